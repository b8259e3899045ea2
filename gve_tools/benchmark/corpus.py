"""The throughput benchmark's corpus: generated videos, images and texts of mixed sizes, written once and reused."""

import random
from pathlib import Path

from gve_tools.media import COLOURS, moving_square, write_image, write_video


def make_corpus(folder: Path, videos: int = 128, images: int = 64, texts: int = 64, seed: int = 0) -> list:
    """Write a mixed corpus to `folder` (kept and reused) and return its inputs, shuffled.

    Videos are 24 fps H.264 clips of 5 to 40 s at 320x240 to 640x360, like short web videos: reading
    8 frames from them means seeking and decoding, as with real corpora. Images come in the same
    sizes, and texts run from a few words to a paragraph.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    colours, directions = sorted(COLOURS), ["left", "right", "up", "down"]
    sizes = [(320, 240), (480, 360), (640, 360)]
    items = []
    for index in range(videos):
        width, height = sizes[index % len(sizes)]
        seconds, colour, direction = rng.choice([5, 10, 20, 40]), rng.choice(colours), rng.choice(directions)
        path = folder / f"video_{index:03d}_{seconds}s_{width}x{height}.mp4"
        if not path.exists():
            write_video(path, moving_square(seconds * 24, width, height, colour, direction), fps=24)
        items.append(str(path))
    for index in range(images):
        width, height = sizes[index % len(sizes)]
        path = folder / f"image_{index:03d}_{width}x{height}.png"
        if not path.exists():
            write_image(path, rng.choice(colours), width, height, seed=index)
        items.append(str(path))
    words = "a red square moves slowly from the left of the frame to the right while the camera pans".split()
    for _ in range(texts):
        items.append(" ".join(rng.choice(words) for _ in range(rng.choice([4, 12, 40, 120]))))
    rng.shuffle(items)
    return items
