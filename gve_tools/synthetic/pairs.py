"""The training pairs: query fields, the relevant video and the task's instruction, in groups of hard negatives
(clips that differ from each other in one attribute); no scene shows a combination that the fold holds out."""

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from gve_tools.synthetic.holdout import (
    held_out,
    random_event,
    random_thing,
    seen,
    spatial_variants,
    temporal_scene,
    temporal_variants,
)
from gve_tools.synthetic.tasks import instructions
from gve_tools.synthetic.world import DIRECTIONS, SPEEDS, Event, Scene, Writer


def training_groups(seed: int, scale: float = 1.0, fold: int = 0) -> Iterator[list[dict]]:
    """Training pairs in groups of hard negatives; no scene shows a combination that `fold` holds out."""
    rng = random.Random(f"train-{seed}")
    test = False
    for _ in range(int(1000 * scale)):
        task = rng.choices(["TXT", "S", "T", "CMP", "VIS", "PR", "LC"], weights=[3, 3, 3, 2, 1, 1, 1])[0]
        if task in ("TXT", "S"):
            base = random_event(rng, test, random_thing(rng), ("static",) if task == "S" else ("static", "move"), fold)
            variants = [e for e in spatial_variants(base, seen_only=True, fold=fold) if e != base]
            events = [base, *rng.sample(variants, min(3, len(variants)))]
            yield [{"task": task, "text": Scene((e,)).caption(), "scene": Scene((e,))} for e in events]
        elif task == "T":
            scene = temporal_scene(rng, test, fold)
            scenes = [scene, *(s for s in temporal_variants(scene) if seen(s, fold))][:4]
            yield [{"task": task, "text": s.caption(), "scene": s} for s in scenes]
        elif task == "CMP":
            thing = random_thing(rng)
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
                scene = Scene((random_event(rng, test, random_thing(rng), fold=fold),))
                if rng.random() < 0.5:
                    group.append({"task": task, "thing": scene.events[0].thing, "jitter": rng.randrange(1, 10**6)})
                else:
                    group.append({"task": task, "clip": replace(scene, jitter=rng.randrange(1, 10**6))})
                group[-1]["scene"] = scene
            yield group
        elif task == "PR":
            scene = Scene(tuple(random_event(rng, test, random_thing(rng), ("move",), fold) for _ in range(2)))
            yield [{"task": task, "text": Scene((e,)).caption(), "scene": scene} for e in scene.events]
        else:
            scene = Scene(
                tuple(random_event(rng, test, random_thing(rng), fold=fold) for _ in range(4)), frames_per_event=4
            )
            yield [{"task": task, "text": scene.caption(), "scene": scene}]


def make_training_pairs(root: Path, seed: int, scale: float = 1.0, fold: int = 0) -> int:
    """Write `root/pairs.jsonl` and its media (training for `fold`); returns the number of pairs."""
    writer = Writer(root)
    task_instructions = instructions()
    rows = []
    groups = list(training_groups(seed, scale, fold))
    for group_id, group in enumerate(tqdm(groups, desc="writing training clips", unit="group")):
        for pair in group:
            row = {"group": group_id, "task": pair["task"], "instruction": task_instructions[pair["task"]]}
            if "text" in pair:
                row["text"] = pair["text"]
            if "thing" in pair:
                row["image"] = writer.image(pair["thing"], pair.get("jitter", 0))
            if "clip" in pair:
                row["video"] = writer.clip(pair["clip"])
            row["document"] = writer.clip(pair["scene"])
            rows.append(row)
    writer.jsonl("pairs.jsonl", rows)
    return len(rows)
