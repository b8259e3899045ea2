"""The test splits (gve_tools.synthetic.splits): evaluate.py's format, and local candidates one attribute away."""

import json

from gve_tools.synthetic.holdout import MOMENT_EVENTS, spatial_variants, temporal_variants
from gve_tools.synthetic.world import COLOURS, FPS, Event, Scene, Thing
from tests.synthetic.support import SPLITS, centroid, decoded, parse, read_jsonl


def test_splits_are_written_in_the_evaluation_format(synthetic):
    from gve_tools.evaluation import load_benchmark

    _, datasets = load_benchmark(synthetic / "test")
    assert sorted(dataset.name for dataset in datasets) == sorted(SPLITS)
    for split in SPLITS:
        folder = synthetic / "test" / split
        description = json.loads((folder / "dataset.json").read_text())
        assert description["ranking"] == ("local" if split in ("S", "T", "MR") else "global")
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


def test_moment_queries_name_the_span_where_their_event_is_drawn(synthetic):
    """MR: each query is one event of a long clip, its qrels the event's span; between events the stage is empty."""
    folder = synthetic / "test" / "MR"
    captions = {row["id"]: row["text"] for row in read_jsonl(folder / "queries.jsonl")}
    videos = {row["id"]: row["video"] for row in read_jsonl(folder / "corpus.jsonl")}
    spans: dict[str, list] = {}
    for row in read_jsonl(folder / "qrels.jsonl"):
        spans.setdefault(row["doc_id"], []).append((row["start"], row["end"], captions[row["query_id"]]))
    assert len(set(captions.values())) == len(captions)  # no caption twice: each names one moment of the split
    for doc, moments in spans.items():
        assert len(moments) == MOMENT_EVENTS
        frames = decoded(folder / videos[doc])
        inside = set()
        for start, end, caption in moments:
            (event,) = parse(caption)
            first, last = round(start * FPS), round(end * FPS)
            assert last - first == 16 and last <= len(frames)
            assert any(centroid(frame, event.thing.colour) for frame in frames[first:last]), caption
            inside.update(range(first, last))
        for index in set(range(len(frames))) - inside:  # the gaps show no thing at all
            assert not any(centroid(frames[index], colour) for colour in COLOURS), (doc, index)
    candidates = read_jsonl(folder / "candidates.jsonl")
    assert all(len(row["doc_ids"]) == 1 for row in candidates)  # local: the segments of the query's own clip
    # VCMR asks the same of every clip's segments, reading MR's clips
    corpus = read_jsonl(synthetic / "test" / "VCMR" / "corpus.jsonl")
    assert {row["video"] for row in corpus} == {f"../MR/{path}" for path in videos.values()}
    assert read_jsonl(synthetic / "test" / "VCMR" / "queries.jsonl") == read_jsonl(folder / "queries.jsonl")
    assert not (synthetic / "test" / "VCMR" / "media").exists()
