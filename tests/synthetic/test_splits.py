"""The test splits (gve_tools.synthetic.splits): evaluate.py's format, and local candidates one attribute away."""

import json

from gve_tools.synthetic.holdout import spatial_variants, temporal_variants
from gve_tools.synthetic.world import Event, Scene, Thing
from tests.synthetic.support import SPLITS, parse, read_jsonl


def test_splits_are_written_in_the_evaluation_format(synthetic):
    from gve_tools.evaluation import load_benchmark

    _, datasets = load_benchmark(synthetic / "test")
    assert sorted(dataset.name for dataset in datasets) == sorted(SPLITS)
    for split in SPLITS:
        folder = synthetic / "test" / split
        description = json.loads((folder / "dataset.json").read_text())
        assert description["ranking"] == ("local" if split in ("S", "T") else "global")
        queries = read_jsonl(folder / "queries.jsonl")
        assert len(queries) >= 8
        for row in read_jsonl(folder / "corpus.jsonl"):
            assert (folder / row["video"]).is_file()


def test_local_candidates_differ_from_the_answer_in_one_attribute(synthetic):
    folder = synthetic / "test" / "T"
    captions = {row["id"]: row["text"] for row in read_jsonl(folder / "queries.jsonl")}
    for row in read_jsonl(folder / "candidates.jsonl"):
        assert 2 <= len(row["doc_ids"]) <= 4 and len(set(row["doc_ids"])) == len(row["doc_ids"])
        assert captions[row["query_id"]]
    # the candidates are made by spatial_variants (S) and temporal_variants (T): one attribute changed
    event = Event(Thing("red", "circle", "small"), "static", position="left")
    for variant in spatial_variants(event):
        changed = [variant.thing.colour != "red", variant.thing.shape != "circle", variant.position != "left"]
        assert sum(changed) == 1 and parse(variant.caption()) == [variant]
    moving = Scene((Event(Thing("red", "circle"), "move", direction="left", speed="slowly"),))
    assert {v.events[0].direction for v in temporal_variants(moving)} == {"right", "up", "down"}
    assert {v.events[0].speed for v in temporal_variants(moving)} == {"slowly"}
    order = Scene((Event(Thing("red", "circle"), "appear"), Event(Thing("blue", "square"), "appear")), together=True)
    assert [v.events for v in temporal_variants(order)] == [order.events[::-1]]
