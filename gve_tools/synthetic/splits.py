"""The test splits, one a task, in evaluate.py's dataset format: every query describes only combinations of
attributes that the fold holds out (`holdout`)."""

import json
import random
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from gve_tools.synthetic.holdout import (
    MOMENT_EVENTS,
    forever,
    moment_clip,
    random_event,
    random_thing,
    spatial_variants,
    temporal_scene,
    temporal_variants,
    unique,
)
from gve_tools.synthetic.tasks import instructions
from gve_tools.synthetic.world import Scene, Writer

# What the test splits are called in evaluate.py's results; each split is scored as its own ability.
BENCHMARK = {
    "name": "GVE-Synthetic",
    "full_name": "GVE synthetic video retrieval splits",
    "dataset": "local/gve-synthetic",
    "source_url": "scripts/make_synthetic_data.py",
}


class Split:
    """One test split in evaluate.py's format: queries, corpus, relevance and (local) candidates."""

    def __init__(self, root: Path, name: str, ranking: str = "global", clips_of: "Split | None" = None) -> None:
        self.name, self.ranking = name, ranking
        self.writer = Writer(root / name)
        self.clips_of = clips_of  # the split whose media folder holds this one's clips too
        self.metric = "R@1"
        self.queries, self.corpus, self.qrels, self.candidates = [], [], [], []
        self._docs: dict[Scene, str] = {}

    def doc(self, scene: Scene) -> str:
        if scene not in self._docs:
            self._docs[scene] = f"d{len(self._docs):04d}"
            if self.clips_of is None:
                video = self.writer.clip(scene)
            else:
                video = f"../{self.clips_of.name}/{self.clips_of.writer.clip(scene)}"
            self.corpus.append({"id": self._docs[scene], "video": video})
        return self._docs[scene]

    def query(
        self,
        fields: dict,
        relevant: Scene | list[Scene],
        candidates: list[Scene] | None = None,
        span: tuple[float, float] | None = None,
    ) -> None:
        """Add a query; `relevant` is its clip, or every clip it describes equally well; `span`, the moment of
        the clip that it describes (a moment query)."""
        relevant = [relevant] if isinstance(relevant, Scene) else relevant
        query_id = f"q{len(self.queries):04d}"
        self.queries.append({"id": query_id, **fields})
        moment = {} if span is None else {"start": span[0], "end": span[1]}
        for scene in relevant:
            self.qrels.append({"query_id": query_id, "doc_id": self.doc(scene), "relevance": 1, **moment})
        if candidates is not None:
            self.candidates.append({"query_id": query_id, "doc_ids": [self.doc(s) for s in [*relevant, *candidates]]})

    def write(self) -> None:
        folder = self.writer.folder
        description = {
            "name": self.name,
            "abilities": [self.name],
            "ranking": self.ranking,
            "metric": self.metric,
            "query_instruction": instructions()[self.name],
            "document_instruction": None,
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        self.writer.jsonl("queries.jsonl", self.queries)
        self.writer.jsonl("corpus.jsonl", self.corpus)
        self.writer.jsonl("qrels.jsonl", self.qrels)
        if self.ranking == "local":
            self.writer.jsonl("candidates.jsonl", self.candidates)


def make_test_splits(root: Path, seed: int, scale: float = 1.0, fold: int = 0) -> dict[str, int]:
    """Write the test splits of `fold` under `root`; returns the number of queries of each."""
    rng = random.Random(f"test-{seed}")
    test = True
    n = max(8, int(60 * scale))
    counts = {}

    split = Split(root, "TXT")
    for scene in unique(forever(rng, lambda r: Scene((random_event(r, test, random_thing(r), fold=fold),))), n):
        split.query({"text": scene.caption()}, scene)
    counts["TXT"] = split

    split = Split(root, "CMP")
    moving = forever(rng, lambda r: Scene((random_event(r, test, random_thing(r), ("move",), fold),)))
    for scene in unique(moving, n):
        event = scene.events[0]
        image = split.writer.image(event.thing)
        split.query({"text": f"this object, but moving {event.direction} {event.speed}", "image": image}, scene)
        for other in temporal_variants(scene):  # the same object moving elsewhere is in the corpus too
            split.doc(other)
    counts["CMP"] = split

    split = Split(root, "VIS")
    scenes = unique(forever(rng, lambda r: Scene((random_event(r, test, random_thing(r), fold=fold),))), n)
    for index, scene in enumerate(scenes):
        if index % 2:  # a still of the thing: every clip that shows it is relevant
            showing = [other for other in scenes if other.events[0].thing == scene.events[0].thing]
            split.query({"image": split.writer.image(scene.events[0].thing, jitter=index + 1)}, showing)
        else:
            split.query({"video": split.writer.clip(replace(scene, jitter=index + 1))}, scene)
    counts["VIS"] = split

    split = Split(root, "S", ranking="local")
    static = forever(rng, lambda r: Scene((random_event(r, test, random_thing(r), ("static",), fold),)))
    for scene in unique(static, n):
        others = spatial_variants(scene.events[0])
        picked = rng.sample([o for o in others if o.position != scene.events[0].position], 2)
        picked += rng.sample([o for o in others if o.position == scene.events[0].position], 3)
        split.query({"text": scene.caption()}, scene, [Scene((o,)) for o in picked])
    counts["S"] = split

    split = Split(root, "T", ranking="local")
    for scene in unique(forever(rng, lambda r: temporal_scene(r, test, fold)), n):
        split.query({"text": scene.caption()}, scene, temporal_variants(scene))
    counts["T"] = split

    split = Split(root, "PR")
    two_moves = forever(
        rng, lambda r: Scene(tuple(random_event(r, test, random_thing(r), ("move",), fold) for _ in range(2)))
    )
    long_scenes = unique(two_moves, n // 2)
    for scene in long_scenes:
        for event in scene.events:
            containing = [other for other in long_scenes if event in other.events]
            split.query({"text": Scene((event,)).caption()}, containing)
    counts["PR"] = split

    split = Split(root, "LC")
    four_events = forever(
        rng,
        lambda r: Scene(tuple(random_event(r, test, random_thing(r), fold=fold) for _ in range(4)), frames_per_event=4),
    )
    for scene in unique(four_events, max(8, n // 2)):
        split.query({"text": scene.caption()}, scene)
    counts["LC"] = split

    counts["MR"], counts["VCMR"] = moment_splits(root, rng, max(2, n // MOMENT_EVENTS), fold)

    for split in tqdm(counts.values(), desc="writing test splits", unit="split"):
        split.write()
    (root / "benchmark.json").write_text(json.dumps(BENCHMARK, indent=2) + "\n", encoding="utf-8")
    return {name: len(split.queries) for name, split in counts.items()}


def moment_splits(root: Path, rng: random.Random, clips: int, fold: int = 0) -> tuple[Split, Split]:
    """MR (each event's caption against the segments of its own clip) and VCMR (against the segments of every
    clip: video corpus moment retrieval), on the same clips; VCMR reads MR's media. No caption is used twice."""
    local = Split(root, "MR", ranking="local")
    corpus = Split(root, "VCMR", clips_of=local)
    local.metric = corpus.metric = "R@1,IoU=0.5"
    used: set[str] = set()
    for _ in range(clips):
        scene = moment_clip(rng, True, fold, frozenset(used))
        for event, span in zip(scene.events, scene.spans(), strict=True):
            caption = Scene((event,)).caption()
            used.add(caption)
            local.query({"text": caption}, scene, [], span)
            corpus.query({"text": caption}, scene, None, span)
    return local, corpus
