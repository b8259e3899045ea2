"""Helpers of the synthetic data tests: a small generated data set, reading its files back, and reading captions
back into the events they describe."""

import json
import re
from pathlib import Path

import numpy as np

from gve_tools.synthetic import Event, Thing, held_out, held_out_order
from gve_tools.synthetic.cli import main
from gve_tools.synthetic.world import COLOURS

SPLITS = ("TXT", "CMP", "VIS", "S", "T", "PR", "LC", "MR", "VCMR")


def write_synthetic(root: Path, *arguments: str) -> Path:
    """A small data set (seed 3, a fiftieth of the default size) written by the command line into `root`."""
    main([str(root), "--seed", "3", "--scale", "0.02", *arguments])
    return root


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def centroid(frame: np.ndarray, colour: str) -> tuple[float, float] | None:
    """Mean (x, y) of the pixels within 40 of `colour`, None if there are none."""
    near = np.abs(frame.astype(int) - np.array(COLOURS[colour])).max(axis=-1) < 40
    if not near.any():
        return None
    ys, xs = np.nonzero(near)
    return float(xs.mean()), float(ys.mean())


def decoded(path: Path) -> np.ndarray:
    from decord import VideoReader

    reader = VideoReader(str(path))
    return reader.get_batch(range(len(reader))).asnumpy()


EVENT = re.compile(
    r"a (?:(?P<size>small|large) )?(?P<colour>\w+) (?P<shape>\w+) "
    r"(?:moves (?P<direction>\w+) (?P<speed>\w+)|(?:(?P<kind>appears|disappears) )?(?:on|at) the (?P<position>\w+))$"
)
ORDER = re.compile(r"a (\w+) (\w+) appears, then a (\w+) (\w+) appears$")


def parse(caption: str) -> list:
    """The events a caption describes (a pair of things for an order caption)."""
    if match := ORDER.match(caption):
        return [(Thing(*match.group(1, 2)), Thing(*match.group(3, 4)))]
    events = []
    for part in caption.split(", then "):
        match = EVENT.match(part)
        assert match, part
        thing = Thing(match["colour"], match["shape"], match["size"] or "large")
        if match["direction"]:
            events.append(Event(thing, "move", direction=match["direction"], speed=match["speed"]))
        else:
            kind = {"appears": "appear", "disappears": "disappear", None: "static"}[match["kind"]]
            events.append(Event(thing, kind, position=match["position"]))
    return events


def is_held_out(event, fold: int = 0) -> bool:
    return held_out_order(*event, fold) if isinstance(event, tuple) else held_out(event, fold)
