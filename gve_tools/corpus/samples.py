"""A synthetic corpus (videos, images, texts, composed items) and its manifest, to try the corpus pipeline on.

Videos are short mp4 clips of a coloured square moving across the picture, images are textured
stills, texts describe them; a quarter of the items with media also carry a caption (composed
inputs). Media paths in the manifest are relative to its folder. `bad` adds items that cannot
be embedded (a missing file, an empty video, a one-frame video, in turn), to try `--on-error skip`.
"""

import json
import random
from pathlib import Path

from gve_tools.media import COLOURS, moving_square, write_image, write_video

DIRECTIONS = ("left", "right", "up", "down")


def make_sample_manifest(folder: str | Path, items: int = 200, bad: int = 0, seed: int = 0) -> Path:
    """Write `items` good items (40% videos, 30% images, 30% texts) and `bad` bad ones; returns the manifest path.

    Media files already in `folder` are reused, so a second call is quick.
    """
    rng = random.Random(seed)
    folder = Path(folder)
    (folder / "media").mkdir(parents=True, exist_ok=True)
    colours = sorted(COLOURS)
    rows = []
    for index in range(items):
        colour, direction = rng.choice(colours), rng.choice(DIRECTIONS)
        caption = f"a {colour} square moving {direction}"
        kind = ("video", "video", "video", "video", "image", "image", "image", "text", "text", "text")[index % 10]
        row: dict = {"id": f"{kind}-{index:05d}"}
        if kind == "video":
            name = f"media/video-{index:05d}.mp4"
            frames = rng.choice((8, 16, 24))  # drawn for a reused file too: the later items' draws stay the same
            if not (folder / name).exists():
                write_video(folder / name, moving_square(frames, 96, 64, colour, direction), fps=8)
            row["video"] = name
        elif kind == "image":
            name = f"media/image-{index:05d}.png"
            if not (folder / name).exists():
                write_image(folder / name, colour, seed=index)
            row["image"] = name
        else:
            row["text"] = caption + rng.choice(("", " on a dark background", " seen from far away"))
        if kind != "text" and rng.random() < 0.25:
            row["text"] = caption
        rows.append(row)
    for index in range(bad):
        kind = index % 3
        row = {"id": f"bad-{index:05d}"}
        if kind == 0:
            row["video"] = f"media/missing-{index:05d}.mp4"
        elif kind == 1:
            (folder / "media" / "empty.mp4").write_bytes(b"")
            row["video"] = "media/empty.mp4"
        else:
            if not (folder / "media" / "one-frame.mp4").exists():
                write_video(folder / "media" / "one-frame.mp4", moving_square(1), fps=8)
            row["video"] = "media/one-frame.mp4"
        rows.insert(rng.randrange(len(rows) + 1), row)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
