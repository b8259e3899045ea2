"""The synthetic world: things with a colour, a shape and a size, the events they take part in, the scenes made of
events, and how a scene is drawn (frames of a clip, a still of a thing) and written to files."""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from gve_tools.media import write_video

SIZE = 112  # frame width and height in pixels: 8x8 patches of 14, 16 visual tokens a frame pair
FPS = 4  # frames a second; a short clip is 8 frames (2 s), a long one 16 (4 s)
SHORT_FRAMES = 8
LONG_FRAMES = 16

COLOURS = {
    "red": (230, 50, 50),
    "green": (50, 190, 70),
    "blue": (60, 90, 240),
    "yellow": (235, 215, 50),
    "white": (245, 245, 245),
    "purple": (170, 70, 210),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 12, "large": 19}  # half-widths in pixels
POSITIONS = {"left": (26, 56), "right": (86, 56), "top": (56, 26), "bottom": (56, 86)}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
SPEEDS = {"slowly": 0.35, "quickly": 0.8}  # fraction of the frame crossed during the event
PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES)


@dataclass(frozen=True)
class Thing:
    colour: str
    shape: str
    size: str = "large"

    def words(self, with_size: bool = True) -> str:
        return f"{self.size} {self.colour} {self.shape}" if with_size else f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Event:
    """One thing doing one thing: `kind` is static, move, appear or disappear."""

    thing: Thing
    kind: str
    position: str = "left"  # where a static, appearing or disappearing thing is
    direction: str = "right"  # where a moving thing goes
    speed: str = "quickly"

    def __post_init__(self) -> None:
        # Fields the kind does not use are reset, so that two events drawn alike are equal.
        if self.kind == "move":
            object.__setattr__(self, "position", "left")
        else:
            object.__setattr__(self, "direction", "right")
            object.__setattr__(self, "speed", "quickly")

    def caption(self) -> str:
        name = f"a {self.thing.words()}"
        where = "at the" if self.position in ("top", "bottom") else "on the"
        if self.kind == "static":
            return f"{name} {where} {self.position}"
        if self.kind == "move":
            return f"{name} moves {self.direction} {self.speed}"
        return f"{name} {self.kind}s {where} {self.position}"


@dataclass(frozen=True)
class Scene:
    """Events shown one after another (a list of simultaneous events when `together`)."""

    events: tuple[Event, ...]
    frames_per_event: int = SHORT_FRAMES
    together: bool = False  # the "order" clips: both things on screen, appearing one after the other
    jitter: int = 0  # seed of a small random offset and background shade (VIS clip queries)
    gaps: tuple[int, ...] = ()  # frames of empty stage before each event, and after the last (moment clips)

    def __post_init__(self) -> None:
        if self.gaps and len(self.gaps) != len(self.events) + 1:
            raise ValueError(f"a scene of {len(self.events)} events needs {len(self.events) + 1} gaps, got {self.gaps}")

    def spans(self) -> list[tuple[float, float]]:
        """Each event's (start, end) in seconds of the clip (`render`'s frames at FPS frames a second)."""
        gaps = self.gaps or (0,) * (len(self.events) + 1)
        spans, frame = [], 0
        for event_gap in gaps[:-1]:
            frame += event_gap
            spans.append((frame / FPS, (frame + self.frames_per_event) / FPS))
            frame += self.frames_per_event
        return spans

    def caption(self) -> str:
        if self.together:
            first, second = (event.thing.words(with_size=False) for event in self.events)
            return f"a {first} appears, then a {second} appears"
        return ", then ".join(event.caption() for event in self.events)


def _mask(shape: str, half: int, cx: float, cy: float) -> np.ndarray:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return (np.abs(dx) <= half * 0.85) & (np.abs(dy) <= half * 0.85)
    # an upward triangle: apex at the top, base at the bottom
    return (dy >= -half) & (dy <= half) & (np.abs(dx) <= (dy + half) / 2)


def _background(jitter: int) -> np.ndarray:
    """The stage: dark, with red rising to the right and green rising downwards.

    The shading tells a patch where it is. Qwen2.5-VL has no absolute position embedding (only
    rotary ones, which shape attention, not features), so on a plain background a tiny model hardly
    tells left from right; the large pretrained one learns position from real scenes' context.
    """
    shade = 0 if jitter == 0 else random.Random(jitter).randrange(-8, 9)
    ramp = np.linspace(0, 60, SIZE, dtype=np.float32)
    frame = np.empty((SIZE, SIZE, 3), dtype=np.float32)
    frame[..., 0] = 20 + ramp[None, :] + shade
    frame[..., 1] = 20 + ramp[:, None] + shade
    frame[..., 2] = 40 + shade
    return frame.astype(np.uint8)


def _event_centres(event: Event, steps: int, offset: tuple[int, int]) -> list[tuple[float, float] | None]:
    """Where the event's thing is in each of its frames (None: not on screen)."""
    ox, oy = offset
    if event.kind == "move":
        dx, dy = DIRECTIONS[event.direction]
        span = SPEEDS[event.speed] * (SIZE - 2 * SIZES[event.thing.size] - 8)
        centres = []
        for t in np.linspace(-0.5, 0.5, steps):
            centres.append((SIZE / 2 + dx * span * t + ox, SIZE / 2 + dy * span * t + oy))
        return centres
    x, y = POSITIONS[event.position]
    here = (x + ox, y + oy)
    if event.kind == "static":
        return [here] * steps
    half = steps // 2
    if event.kind == "appear":
        return [None] * half + [here] * (steps - half)
    return [here] * half + [None] * (steps - half)


def render(scene: Scene) -> list[np.ndarray]:
    """The scene's frames, HxWx3 uint8."""
    rng = random.Random(scene.jitter)
    offset = (rng.randint(-4, 4), rng.randint(-4, 4)) if scene.jitter else (0, 0)
    background = _background(scene.jitter)
    if scene.together:  # thing 1 appears at frame 2, thing 2 at frame 5; both stay
        first, second = scene.events
        frames = []
        for index in range(SHORT_FRAMES):
            frame = background.copy()
            for event, start, where in ((first, 2, (36, 56)), (second, 5, (76, 56))):
                if index >= start:
                    half = SIZES[event.thing.size]
                    frame[_mask(event.thing.shape, half, where[0] + offset[0], where[1] + offset[1])] = COLOURS[
                        event.thing.colour
                    ]
            frames.append(frame)
        return frames
    frames = []
    gaps = scene.gaps or (0,) * (len(scene.events) + 1)
    for event, gap in zip(scene.events, gaps, strict=False):
        frames += [background] * gap
        for centre in _event_centres(event, scene.frames_per_event, offset):
            frame = background.copy()
            if centre is not None:
                frame[_mask(event.thing.shape, SIZES[event.thing.size], *centre)] = COLOURS[event.thing.colour]
            frames.append(frame)
    return frames + [background] * gaps[-1]


def still(thing: Thing, jitter: int = 0) -> np.ndarray:
    """A still image of `thing` in the middle of the picture."""
    frame = _background(jitter)
    frame[_mask(thing.shape, SIZES[thing.size], SIZE / 2, SIZE / 2)] = COLOURS[thing.colour]
    return frame


@dataclass
class Writer:
    """Writes clips and stills under `folder/media`, once each, and remembers their relative paths; and row files."""

    folder: Path
    written: dict = field(default_factory=dict)

    def clip(self, scene: Scene) -> str:
        if scene not in self.written:
            name = f"media/clip{len(self.written):05d}.mp4"
            (self.folder / "media").mkdir(parents=True, exist_ok=True)
            write_video(self.folder / name, render(scene), fps=FPS)
            self.written[scene] = name
        return self.written[scene]

    def image(self, thing: Thing, jitter: int = 0) -> str:
        key = ("image", thing, jitter)
        if key not in self.written:
            name = f"media/still{len(self.written):05d}.png"
            (self.folder / "media").mkdir(parents=True, exist_ok=True)
            Image.fromarray(still(thing, jitter)).save(self.folder / name)
            self.written[key] = name
        return self.written[key]

    def jsonl(self, name: str, rows: list[dict]) -> None:
        """Write `rows` to `folder/name`, one JSON object a line."""
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
