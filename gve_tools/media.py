"""Synthetic images and videos whose content is known, for the tests, the demo and the benchmarks."""

import itertools
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
    "white": (240, 240, 240),
}
BACKGROUND = (30, 30, 40)


def draw_frame(width: int, height: int, colour: str, x: float, y: float, size: int = 16) -> np.ndarray:
    """An HxWx3 uint8 frame: a square of `colour` with its top-left corner at (x, y)."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    left, top = int(round(x)), int(round(y))
    frame[max(top, 0) : max(top + size, 0), max(left, 0) : max(left + size, 0)] = COLOURS[colour]
    return frame


def moving_square(
    frames: int = 16, width: int = 96, height: int = 64, colour: str = "red", direction: str = "right"
) -> list[np.ndarray]:
    """Frames of a square crossing the picture in `direction` (left, right, up or down)."""
    size = 16
    steps = np.linspace(0.0, 1.0, frames)
    out = []
    for t in steps:
        if direction in ("left", "right"):
            x = (width - size) * (t if direction == "right" else 1 - t)
            y = (height - size) / 2
        else:
            x = (width - size) / 2
            y = (height - size) * (t if direction == "down" else 1 - t)
        out.append(draw_frame(width, height, colour, x, y, size))
    return out


def events(
    seconds: float, fps: int = 8, width: int = 96, height: int = 64, event_seconds: float = 6.0
) -> Iterator[np.ndarray]:
    """Frames of a long video made of events: a square of one colour crossing the picture in one direction, then
    the next colour and direction, every `event_seconds`; generated as they are written, whatever the length."""
    per_event = max(2, round(event_seconds * fps))
    total = round(seconds * fps)
    plan = [(colour, direction) for colour in COLOURS for direction in ("right", "left", "up", "down")]
    for start in range(0, total, per_event):
        colour, direction = plan[(start // per_event) % len(plan)]
        yield from moving_square(per_event, width, height, colour, direction)[: total - start]


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float = 8.0,
    codec: str | None = None,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    times: Sequence[float] | None = None,
) -> Path:
    """Encode frames (HxWx3 uint8, even sizes; any iterable, a generator included, so that a long video never
    sits in memory) with PyAV: H.264 (else MPEG-4) in mp4 by default, or `codec`, `pix_fmt` and encoder `options`
    in the container the file's extension names. `fps` may be fractional (29.97 is written as 30000/1001);
    `times` gives each frame's presentation time in seconds instead, for a variable frame rate (`fps` is then
    the rate the header states)."""
    import av

    path = Path(path)
    codec = codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    frames = iter(frames)
    first = next(frames)
    frames = itertools.chain([first], frames)
    height, width = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = options or {}
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 90000)
        for number, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if times is not None:
                picture.pts, picture.time_base = round(times[number] * 90000), Fraction(1, 90000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def write_blank_video(
    path: str | Path,
    width: int,
    height: int,
    frames: int,
    fps: int = 8,
    keyframe_interval: int | None = None,
    codec: str = "libx264",
) -> Path:
    """A near-empty H.264 video (a corner square that changes shade) that compresses to a few KB at any size.

    What an attacker sends to make a decoder work: huge frames, and with a long `keyframe_interval` many frames
    to decode before reaching a sampled one.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        interval = keyframe_interval or frames
        parameters = f"keyint={interval}:scenecut=0" + (":log-level=none" if codec == "libx265" else "")
        stream.options = {"crf": "51", "preset": "ultrafast", codec.replace("lib", "") + "-params": parameters}
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        for index in range(frames):
            frame[:16, :16] = index * 7 % 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_image(path: str | Path, colour: str = "blue", width: int = 120, height: int = 80, seed: int = 0) -> Path:
    """Save a textured image: noise under a square of `colour`."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[height // 4 : height // 4 + 24, width // 3 : width // 3 + 24] = COLOURS[colour]
    path = Path(path)
    Image.fromarray(pixels).save(path)
    return path
