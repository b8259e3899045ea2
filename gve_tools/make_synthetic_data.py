#!/usr/bin/env python
"""Generate GVE's synthetic video retrieval data: clips whose content is known, training pairs, and test splits.

Every clip is a real mp4 of simple shapes on a plain background, drawn from a `Scene`: objects with a
colour, a shape, a size and a position, that move in a direction at a speed, appear or disappear, one
event after another. Each clip's caption is written from its scene, so what a caption says is true of
its clip and of no other clip in the same split.

The test splits follow UVRB's abilities and are written in scripts/evaluate.py's dataset format:

    TXT  text -> video, ranked against the whole split
    CMP  text + image -> video ("this object, but moving left")
    VIS  image or clip -> video (a still of the object, or the same event drawn again with jitter)
    S    spatial: ranked against candidates whose captions differ only in colour, shape or position
    T    temporal: ranked against candidates that differ only in direction, event order, or appear/disappear
    PR   partially relevant: the caption describes one segment of a longer clip
    LC   long context: a long clip of four events, described in order

Train and test are disjoint in their combinations of attributes (`held_out`): each colour-shape
pair has one position and one direction that only test clips show it in, and some orders of two
things are only shown in test; every test query describes only such held-out combinations, while
each colour, shape, position and direction on its own is seen in training. `train/pairs.jsonl`
holds the training pairs (query fields, the relevant video, the task's instruction), in groups of
hard negatives: clips that differ from each other in one attribute.

`--fold` chooses one of four ways to hold combinations out, no two of which hold out the same one.
Fold 0 (the default) makes the recorded test splits. Folds 1 to 3 are for choosing training settings:
train on a fold's training pairs and compare on its test splits, so that the fold-0 test splits are
only ever used to measure the final recipe.

Outputs are reproducible from `--seed`: the same seed gives the same scenes, captions and pixels.

    python scripts/make_synthetic_data.py build/synthetic              # train/ and test/ (about 1,700 clips)
    python scripts/make_synthetic_data.py build/synthetic --seed 1 --scale 0.25
    python scripts/make_synthetic_data.py build/synthetic-fold1 --fold 1    # validation data
    python scripts/make_synthetic_data.py bundled/samples --samples    # the main job's sample clips and queries
"""

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from gve_tools.repo import query_instruction
from gve_tools.synthetic_media import write_video
from gve_tools.text import docstring_parser

QUERY_INSTRUCTION = query_instruction()

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


FOLDS = 4  # ways of choosing the held-out combinations; no two folds hold out the same one


def held_out(event: "Event", fold: int = 0) -> bool:
    """Whether the event's combination of attributes is kept for the test splits of `fold`.

    Each colour-shape pair has one held-out position (for static, appearing and disappearing things)
    and one held-out direction (for moving ones), spread so that every position and direction is
    held out for some pairs and seen with others. Fold 0 makes the recorded test splits; the other
    folds hold out other combinations, for choosing training settings without the test splits.
    """
    c, s = list(COLOURS).index(event.thing.colour), SHAPES.index(event.thing.shape)
    if event.kind == "move":
        return event.direction == list(DIRECTIONS)[(c + 2 * s + 1 + fold) % len(DIRECTIONS)]
    return event.position == list(POSITIONS)[(c + s + fold) % len(POSITIONS)]


def held_out_order(first: "Thing", second: "Thing", fold: int = 0) -> bool:
    """Whether "`first` appears, then `second` appears" is kept for the test splits of `fold`."""
    return (PAIRS.index((first.colour, first.shape)) + PAIRS.index((second.colour, second.shape))) % FOLDS == fold


# The query instruction of each task: the one home for them, used by the training and written into
# each test split's dataset.json. Documents (videos) use the model's default instruction.
INSTRUCTIONS = {
    "TXT": QUERY_INSTRUCTION,
    "CMP": "Find the video that shows the object in the image, changed as the text says.",
    "VIS": "Find the video that shows the same content as the given image or video.",
    "S": QUERY_INSTRUCTION,
    "T": QUERY_INSTRUCTION,
    "PR": "Find the video that contains the moment described by the query.",
    "LC": "Find the long video whose events match the description, in order.",
}
# What the test splits are called in evaluate.py's results; each split is scored as its own ability.
BENCHMARK = {
    "name": "GVE-Synthetic",
    "full_name": "GVE synthetic video retrieval splits (scripts/make_synthetic_data.py)",
    "dataset": "local/gve-synthetic",
    "source_url": "scripts/make_synthetic_data.py",
}


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
    for event in scene.events:
        for centre in _event_centres(event, scene.frames_per_event, offset):
            frame = background.copy()
            if centre is not None:
                frame[_mask(event.thing.shape, SIZES[event.thing.size], *centre)] = COLOURS[event.thing.colour]
            frames.append(frame)
    return frames


def still(thing: Thing, jitter: int = 0) -> np.ndarray:
    """A still image of `thing` in the middle of the picture."""
    frame = _background(jitter)
    frame[_mask(thing.shape, SIZES[thing.size], SIZE / 2, SIZE / 2)] = COLOURS[thing.colour]
    return frame


# --- scene sampling ---------------------------------------------------------------------------------


def _thing(rng: random.Random) -> Thing:
    colour, shape = rng.choice(PAIRS)
    return Thing(colour, shape, rng.choice(list(SIZES)))


def _event(
    rng: random.Random,
    test: bool,
    thing: Thing,
    kinds: tuple[str, ...] = ("static", "move", "appear", "disappear"),
    fold: int = 0,
) -> Event:
    """A random event of `thing`: a held-out combination for the test splits, a seen one for training."""
    kind = rng.choice(kinds)
    options = [
        Event(thing, kind, position, direction, rng.choice(list(SPEEDS)))
        for position in POSITIONS
        for direction in DIRECTIONS
    ]
    return rng.choice([event for event in options if held_out(event, fold) == test])


def spatial_variants(event: Event, seen_only: bool = False, fold: int = 0) -> list[Event]:
    """The event with its colour, its shape or its position changed: captions that differ in one spatial word.

    `seen_only` leaves out the combinations `fold` holds out (for training).
    """
    thing = event.thing
    out = [replace(event, thing=replace(thing, colour=c)) for c in COLOURS if c != thing.colour]
    out += [replace(event, thing=replace(thing, shape=s)) for s in SHAPES if s != thing.shape]
    out += [replace(event, position=p) for p in POSITIONS if p != event.position]
    return [e for e in out if not (seen_only and held_out(e, fold))]


def temporal_variants(scene: Scene) -> list[Scene]:
    """The scene changed in time only: another direction, the reverse order, appear for disappear."""
    if scene.together:
        return [replace(scene, events=scene.events[::-1])]
    (event,) = scene.events
    if event.kind == "move":
        return [Scene((replace(event, direction=d),)) for d in DIRECTIONS if d != event.direction]
    flipped = {"appear": "disappear", "disappear": "appear"}[event.kind]
    return [Scene((replace(event, kind=flipped),))]


def _temporal_scene(rng: random.Random, test: bool, fold: int = 0) -> Scene:
    if rng.random() < 0.4:
        first, second = _thing(rng), _thing(rng)
        while (second.colour, second.shape) == (first.colour, first.shape) or held_out_order(
            first, second, fold
        ) != test:
            first, second = _thing(rng), _thing(rng)
        return Scene((Event(first, "appear"), Event(second, "appear")), together=True)
    return Scene((_event(rng, test, _thing(rng), ("move", "move", "appear", "disappear"), fold),))


def _seen(scene: Scene, fold: int = 0) -> bool:
    """Whether a training clip of `fold` may show the scene."""
    if scene.together:
        return not held_out_order(*(event.thing for event in scene.events), fold)
    return not any(held_out(event, fold) for event in scene.events)


# --- writing ------------------------------------------------------------------------------------------


@dataclass
class Writer:
    """Writes clips and stills under `folder/media`, once each, and remembers their relative paths."""

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


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


def _unique(scenes: Iterator[Scene], count: int) -> list[Scene]:
    """The first `count` scenes of distinct captions (fewer if `scenes` has fewer distinct ones)."""
    seen, out = set(), []
    for scene in itertools.islice(scenes, 100 * count):
        caption = scene.caption()
        if caption not in seen:
            seen.add(caption)
            out.append(scene)
            if len(out) == count:
                break
    return out


def _forever(rng: random.Random, make) -> Iterator[Scene]:
    while True:
        yield make(rng)


class Split:
    """One test split in evaluate.py's format: queries, corpus, relevance and (local) candidates."""

    def __init__(self, root: Path, name: str, ranking: str = "global") -> None:
        self.name, self.ranking = name, ranking
        self.writer = Writer(root / name)
        self.queries, self.corpus, self.qrels, self.candidates = [], [], [], []
        self._docs: dict[Scene, str] = {}

    def doc(self, scene: Scene) -> str:
        if scene not in self._docs:
            self._docs[scene] = f"d{len(self._docs):04d}"
            self.corpus.append({"id": self._docs[scene], "video": self.writer.clip(scene)})
        return self._docs[scene]

    def query(self, fields: dict, relevant: Scene | list[Scene], candidates: list[Scene] | None = None) -> None:
        """Add a query; `relevant` is its clip, or every clip it describes equally well."""
        relevant = [relevant] if isinstance(relevant, Scene) else relevant
        query_id = f"q{len(self.queries):04d}"
        self.queries.append({"id": query_id, **fields})
        for scene in relevant:
            self.qrels.append({"query_id": query_id, "doc_id": self.doc(scene), "relevance": 1})
        if candidates is not None:
            self.candidates.append({"query_id": query_id, "doc_ids": [self.doc(s) for s in [*relevant, *candidates]]})

    def write(self) -> None:
        folder = self.writer.folder
        description = {
            "name": self.name,
            "abilities": [self.name],
            "ranking": self.ranking,
            "metric": "R@1",
            "query_instruction": INSTRUCTIONS[self.name],
            "document_instruction": None,
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        _write_jsonl(folder / "queries.jsonl", self.queries)
        _write_jsonl(folder / "corpus.jsonl", self.corpus)
        _write_jsonl(folder / "qrels.jsonl", self.qrels)
        if self.ranking == "local":
            _write_jsonl(folder / "candidates.jsonl", self.candidates)


def make_test_splits(root: Path, seed: int, scale: float = 1.0, fold: int = 0) -> dict[str, int]:
    """Write the seven test splits of `fold` under `root`; returns the number of queries of each."""
    rng = random.Random(f"test-{seed}")
    test = True
    n = max(8, int(60 * scale))
    counts = {}

    split = Split(root, "TXT")
    for scene in _unique(_forever(rng, lambda r: Scene((_event(r, test, _thing(r), fold=fold),))), n):
        split.query({"text": scene.caption()}, scene)
    counts["TXT"] = split

    split = Split(root, "CMP")
    for scene in _unique(_forever(rng, lambda r: Scene((_event(r, test, _thing(r), ("move",), fold),))), n):
        event = scene.events[0]
        image = split.writer.image(event.thing)
        split.query({"text": f"this object, but moving {event.direction} {event.speed}", "image": image}, scene)
        for other in temporal_variants(scene):  # the same object moving elsewhere is in the corpus too
            split.doc(other)
    counts["CMP"] = split

    split = Split(root, "VIS")
    scenes = _unique(_forever(rng, lambda r: Scene((_event(r, test, _thing(r), fold=fold),))), n)
    for index, scene in enumerate(scenes):
        if index % 2:  # a still of the thing: every clip that shows it is relevant
            showing = [other for other in scenes if other.events[0].thing == scene.events[0].thing]
            split.query({"image": split.writer.image(scene.events[0].thing, jitter=index + 1)}, showing)
        else:
            split.query({"video": split.writer.clip(replace(scene, jitter=index + 1))}, scene)
    counts["VIS"] = split

    split = Split(root, "S", ranking="local")
    static = _forever(rng, lambda r: Scene((_event(r, test, _thing(r), ("static",), fold),)))
    for scene in _unique(static, n):
        others = spatial_variants(scene.events[0])
        picked = rng.sample([o for o in others if o.position != scene.events[0].position], 2)
        picked += rng.sample([o for o in others if o.position == scene.events[0].position], 3)
        split.query({"text": scene.caption()}, scene, [Scene((o,)) for o in picked])
    counts["S"] = split

    split = Split(root, "T", ranking="local")
    for scene in _unique(_forever(rng, lambda r: _temporal_scene(r, test, fold)), n):
        split.query({"text": scene.caption()}, scene, temporal_variants(scene))
    counts["T"] = split

    split = Split(root, "PR")
    long_scenes = _unique(
        _forever(rng, lambda r: Scene(tuple(_event(r, test, _thing(r), ("move",), fold) for _ in range(2)))), n // 2
    )
    for scene in long_scenes:
        for event in scene.events:
            containing = [other for other in long_scenes if event in other.events]
            split.query({"text": Scene((event,)).caption()}, containing)
    counts["PR"] = split

    split = Split(root, "LC")
    long_scenes = _unique(
        _forever(
            rng, lambda r: Scene(tuple(_event(r, test, _thing(r), fold=fold) for _ in range(4)), frames_per_event=4)
        ),
        max(8, n // 2),
    )
    for scene in long_scenes:
        split.query({"text": scene.caption()}, scene)
    counts["LC"] = split

    for split in tqdm(counts.values(), desc="writing test splits", unit="split"):
        split.write()
    (root / "benchmark.json").write_text(json.dumps(BENCHMARK, indent=2) + "\n", encoding="utf-8")
    return {name: len(split.queries) for name, split in counts.items()}


def training_groups(seed: int, scale: float = 1.0, fold: int = 0) -> Iterator[list[dict]]:
    """Training pairs in groups of hard negatives; no scene shows a combination that `fold` holds out."""
    rng = random.Random(f"train-{seed}")
    test = False
    for _ in range(int(1000 * scale)):
        task = rng.choices(["TXT", "S", "T", "CMP", "VIS", "PR", "LC"], weights=[3, 3, 3, 2, 1, 1, 1])[0]
        if task in ("TXT", "S"):
            base = _event(rng, test, _thing(rng), ("static",) if task == "S" else ("static", "move"), fold)
            variants = [e for e in spatial_variants(base, seen_only=True, fold=fold) if e != base]
            events = [base, *rng.sample(variants, min(3, len(variants)))]
            yield [{"task": task, "text": Scene((e,)).caption(), "scene": Scene((e,))} for e in events]
        elif task == "T":
            scene = _temporal_scene(rng, test, fold)
            scenes = [scene, *(s for s in temporal_variants(scene) if _seen(s, fold))][:4]
            yield [{"task": task, "text": s.caption(), "scene": s} for s in scenes]
        elif task == "CMP":
            thing = _thing(rng)
            speed = rng.choice(list(SPEEDS))
            group = []
            for direction in [d for d in DIRECTIONS if not held_out(Event(thing, "move", direction=d), fold)]:
                scene = Scene((Event(thing, "move", direction=direction, speed=speed),))
                group.append({"task": task, "text": f"this object, but moving {direction} {speed}", "thing": thing})
                group[-1]["scene"] = scene
            yield group
        elif task == "VIS":
            group = []
            for _ in range(3):
                scene = Scene((_event(rng, test, _thing(rng), fold=fold),))
                if rng.random() < 0.5:
                    group.append({"task": task, "thing": scene.events[0].thing, "jitter": rng.randrange(1, 10**6)})
                else:
                    group.append({"task": task, "clip": replace(scene, jitter=rng.randrange(1, 10**6))})
                group[-1]["scene"] = scene
            yield group
        elif task == "PR":
            scene = Scene(tuple(_event(rng, test, _thing(rng), ("move",), fold) for _ in range(2)))
            yield [{"task": task, "text": Scene((e,)).caption(), "scene": scene} for e in scene.events]
        else:
            scene = Scene(tuple(_event(rng, test, _thing(rng), fold=fold) for _ in range(4)), frames_per_event=4)
            yield [{"task": task, "text": scene.caption(), "scene": scene}]


def make_training_pairs(root: Path, seed: int, scale: float = 1.0, fold: int = 0) -> int:
    """Write `root/pairs.jsonl` and its media (training for `fold`); returns the number of pairs."""
    writer = Writer(root)
    rows = []
    groups = list(training_groups(seed, scale, fold))
    for group_id, group in enumerate(tqdm(groups, desc="writing training clips", unit="group")):
        for pair in group:
            row = {"group": group_id, "task": pair["task"], "instruction": INSTRUCTIONS[pair["task"]]}
            if "text" in pair:
                row["text"] = pair["text"]
            if "thing" in pair:
                row["image"] = writer.image(pair["thing"], pair.get("jitter", 0))
            if "clip" in pair:
                row["video"] = writer.clip(pair["clip"])
            row["document"] = writer.clip(pair["scene"])
            rows.append(row)
    _write_jsonl(root / "pairs.jsonl", rows)
    return len(rows)


def make_samples(root: Path) -> int:
    """The main job's sample folder: a few test clips in `videos/`, and `queries.json` of every query kind."""
    videos, media = root / "videos", root / "queries"
    videos.mkdir(parents=True, exist_ok=True)
    media.mkdir(parents=True, exist_ok=True)
    scenes = {
        "red_circle_moves_left.mp4": Scene((Event(Thing("red", "circle"), "move", direction="left"),)),
        "red_circle_moves_right.mp4": Scene((Event(Thing("red", "circle"), "move", direction="right"),)),
        "green_square_on_the_top.mp4": Scene((Event(Thing("green", "square"), "static", position="top"),)),
        "blue_triangle_appears.mp4": Scene((Event(Thing("blue", "triangle"), "appear", position="right"),)),
        "yellow_circle_disappears.mp4": Scene((Event(Thing("yellow", "circle", "small"), "disappear"),)),
        "white_square_moves_down.mp4": Scene((Event(Thing("white", "square"), "move", direction="down"),)),
        "purple_triangle_moves_up.mp4": Scene(
            (Event(Thing("purple", "triangle", "small"), "move", direction="up", speed="slowly"),)
        ),
    }
    for name, scene in scenes.items():
        write_video(videos / name, render(scene), fps=FPS)
    queries = [{"name": f"caption of {name}", "text": s.caption(), "expected": name} for name, s in scenes.items()]
    Image.fromarray(still(Thing("white", "square"), jitter=3)).save(media / "white_square.png")
    write_video(media / "green_square_top.mp4", render(replace(scenes["green_square_on_the_top.mp4"], jitter=5)), FPS)
    queries += [
        {
            "name": "image of a white square",
            "image": "queries/white_square.png",
            "expected": "white_square_moves_down.mp4",
        },
        {
            "name": "another clip of the green square",
            "video": "queries/green_square_top.mp4",
            "expected": "green_square_on_the_top.mp4",
        },
        {
            "name": "this red circle, but moving right",
            "text": "this object, but moving right quickly",
            "image": "queries/red_circle.png",
            "instruction": INSTRUCTIONS["CMP"],
            "expected": "red_circle_moves_right.mp4",
        },
    ]
    Image.fromarray(still(Thing("red", "circle"))).save(media / "red_circle.png")
    (root / "queries.json").write_text(json.dumps(queries, indent=2) + "\n", encoding="utf-8")
    return len(scenes)


def main(argv: list[str] | None = None) -> None:
    parser = docstring_parser(__doc__)
    parser.add_argument("out", type=Path, help="folder to write: train/ and test/ (or, with --samples, the samples)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of training groups and test queries"
    )
    parser.add_argument(
        "--fold",
        type=int,
        choices=range(FOLDS),
        default=0,
        help="which combinations to hold out (default 0, the recorded test splits; 1-3 for choosing training settings)",
    )
    parser.add_argument("--samples", action="store_true", help="write the main job's sample clips and queries")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    if args.samples:
        print(f"wrote {make_samples(args.out)} sample clips and queries.json to {args.out}")
        return
    pairs = make_training_pairs(args.out / "train", args.seed, args.scale, args.fold)
    counts = make_test_splits(args.out / "test", args.seed, args.scale, args.fold)
    print(f"wrote {pairs} training pairs to {args.out / 'train'}")
    print(f"wrote test splits to {args.out / 'test'}: " + ", ".join(f"{k} {v} queries" for k, v in counts.items()))


if __name__ == "__main__":
    main()
