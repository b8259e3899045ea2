"""Moment datasets: their format, the moment metrics and chance levels, segment search, and a run end to end."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gve_tools.evaluation import EvaluationError, evaluate, load_dataset
from gve_tools.evaluation.cli import main
from gve_tools.evaluation.format import METRICS, Dataset, Item
from gve_tools.evaluation.metrics import rank_metrics, score_dataset
from gve_tools.evaluation.moments import Segments, moment_scores, temporal_iou
from gve_tools.repo import query_instruction, remote_module
from tests.evaluation.support import write_dataset, write_jsonl


def test_temporal_iou():
    spans = np.array([[0.0, 4.0], [2.0, 6.0], [4.0, 8.0], [10.0, 12.0]])
    assert temporal_iou(spans, (2.0, 6.0)).tolist() == pytest.approx([2 / 6, 1.0, 2 / 6, 0.0])


def _moment_dataset(ranking: str) -> Dataset:
    """Two videos; q0's moment is 2-6 s of v0, q1's is 0-2 s of v1 (and, ranked globally, 8-10 s of v0 too)."""
    corpus = [
        Item(name, {"video": f"{name}.mp4"}, None, f"corpus.jsonl:{i + 1}") for i, name in enumerate(("v0", "v1"))
    ]
    queries = [Item(f"q{i}", {"text": f"moment {i}"}, None, f"queries.jsonl:{i + 1}") for i in range(2)]
    moments = {"q0": {"v0": [(2.0, 6.0)]}, "q1": {"v1": [(0.0, 2.0)]}}
    if ranking == "global":
        moments["q1"]["v0"] = [(8.0, 10.0)]
    return Dataset(
        folder=Path("."),
        name=ranking,
        abilities=["MR"],
        ranking=ranking,
        metric="R@1,IoU=0.5",
        query_instruction=None,
        document_instruction=None,
        queries=queries,
        corpus=corpus,
        qrels={q: dict.fromkeys(docs, 1) for q, docs in moments.items()},
        candidates={"q0": ["v0"], "q1": ["v1"]} if ranking == "local" else None,
        moments=moments,
    )


SPANS = {"v0": [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)], "v1": [(0.0, 4.0)]}


def _segments(v0_scores: list[float], v1_score: float) -> dict[str, Segments]:
    """Segments whose embeddings score `v0_scores` and `v1_score` against the query [1, 0] (and 0 against [0, 1])."""

    def rows(values):
        return np.array([[v, np.sqrt(1 - v * v)] for v in values], dtype=np.float32)

    return {"v0": Segments(SPANS["v0"], rows(v0_scores)), "v1": Segments(SPANS["v1"], rows([v1_score]))}


def test_moment_metrics_and_chance_by_hand():
    segments = _segments([0.1, 0.9, 0.5, 0.2], 0.3)
    queries = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    # local: q0 ranks v0's segments, whose top (2-6 s) is its moment (IoU 1); q1 ranks v1's one (0-4 s, IoU 0.5)
    scores, chance = moment_scores(_moment_dataset("local"), queries, segments)
    assert scores == pytest.approx({"R@1,IoU=0.5": 1.0, "R@1,IoU=0.7": 0.5, "mIoU": 0.75})
    # chance: q0's four segments have IoU 1/3, 1, 1/3, 0; q1's one 0.5
    assert chance == pytest.approx(
        {"R@1,IoU=0.5": (1 / 4 + 1) / 2, "R@1,IoU=0.7": (1 / 4 + 0) / 2, "mIoU": (5 / 12 + 0.5) / 2}
    )
    # global: both queries rank all five segments; the top is v0's 2-6 s, which is q1's only in part (IoU 0 with 8-10)
    scores, chance = moment_scores(_moment_dataset("global"), queries, segments)
    assert scores == pytest.approx({"R@1,IoU=0.5": 0.5, "R@1,IoU=0.7": 0.5, "mIoU": 0.5})
    # q1's pool: v0's 6-10 s has IoU 0.5 with 8-10 s, and v1's 0-4 s has 0.5 with 0-2 s
    assert chance["R@1,IoU=0.5"] == pytest.approx((1 / 5 + 2 / 5) / 2)
    assert chance["mIoU"] == pytest.approx(((1 / 3 + 1 + 1 / 3) / 5 + 1.0 / 5) / 2)


def test_equal_scores_rank_the_lower_iou_first():
    queries = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    scores, _ = moment_scores(_moment_dataset("local"), queries, _segments([0.5, 0.5, 0.5, 0.5], 0.3))
    assert scores["R@1,IoU=0.5"] == 0.5  # q0's four segments tie: the one of IoU 0 comes first


def test_segmented_videos_are_ranked_by_their_best_segment():
    rng = np.random.default_rng(3)
    dataset = _moment_dataset("global")
    segments = {doc: rng.standard_normal((len(SPANS[doc]), 6)).astype(np.float32) for doc in ("v0", "v1")}
    queries = rng.standard_normal((2, 6)).astype(np.float32)
    result = score_dataset(dataset, queries, segments)
    best = np.stack([(queries @ segments[doc].T).max(axis=1) for doc in ("v0", "v1")], axis=1)
    expected = rank_metrics(best, np.array([[1, 0], [1, 1]]))
    assert result.scores == pytest.approx({name: expected[name].mean() for name in METRICS})


@pytest.fixture()
def moment_folder(tmp_path, media) -> Path:
    """A moment dataset over the 10-second test video, and a still image beside it."""
    shutil.copy(media["long_video"], tmp_path / "long.mp4")
    shutil.copy(media["image"], tmp_path / "still.png")
    return write_dataset(
        tmp_path / "moments",
        {"name": "MR-mini", "abilities": ["MR"], "ranking": "global"},
        [{"id": "q0", "text": "the square enters"}, {"id": "q1", "text": "the square leaves"}],
        [{"id": "v", "video": "../long.mp4"}],
        [
            {"query_id": "q0", "doc_id": "v", "relevance": 1, "start": 0, "end": 3.5},
            {"query_id": "q1", "doc_id": "v", "relevance": 1, "start": 6.0, "end": 10.0},
            {"query_id": "q1", "doc_id": "v", "relevance": 1, "start": 1.0, "end": 2.0},
        ],
    )


def test_a_moment_dataset_loads_its_spans(moment_folder):
    dataset = load_dataset(moment_folder)
    assert dataset.metric == "R@1,IoU=0.5"  # the default main metric of a moment dataset
    assert dataset.moments == {"q0": {"v": [(0.0, 3.5)]}, "q1": {"v": [(6.0, 10.0), (1.0, 2.0)]}}
    assert dataset.qrels == {"q0": {"v": 1}, "q1": {"v": 1}}


def _rewrite(folder: Path, name: str, rows: list[dict]) -> None:
    write_jsonl(folder / name, rows)


@pytest.mark.parametrize(
    ("qrels", "corpus", "spec", "message"),
    [
        (
            [
                {"query_id": "q0", "doc_id": "v", "relevance": 1, "start": 0, "end": 3.5},
                {"query_id": "q1", "doc_id": "v", "relevance": 1},
            ],
            None,
            None,
            r"qrels.jsonl:2: no moment \('start', 'end'\) here, but every line before has one",
        ),
        (
            [{"query_id": "q0", "doc_id": "v", "relevance": 1, "start": 4, "end": 3.5}],
            None,
            None,
            r"qrels.jsonl:1: 'end' \(3.5\) must be after 'start' \(4\)",
        ),
        (
            [{"query_id": "q0", "doc_id": "v", "relevance": 1, "start": -1, "end": 3.5}],
            None,
            None,
            r"qrels.jsonl:1: 'start' and 'end' must both be seconds >= 0, got -1 and 3.5",
        ),
        (
            [{"query_id": "q0", "doc_id": "v", "relevance": 1, "end": 3.5}],
            None,
            None,
            r"qrels.jsonl:1: 'start' and 'end' must both be seconds >= 0, got None and 3.5",
        ),
        (
            None,
            [{"id": "v", "video": "../long.mp4"}, {"id": "s", "image": "../still.png"}],
            None,
            r"corpus.jsonl:2: item 's': a moment dataset ranks the segments of videos, so each of its ranked "
            r"documents must be a video alone, not image",
        ),
        (
            [{"query_id": "q0", "doc_id": "v", "relevance": 1}, {"query_id": "q1", "doc_id": "v", "relevance": 1}],
            None,
            {"name": "x", "abilities": ["MR"], "ranking": "global", "metric": "mIoU"},
            r"'metric' 'mIoU' needs moments \('start', 'end'\) in qrels",
        ),
    ],
)
def test_moment_format_errors_name_the_file_line_and_field(moment_folder, qrels, corpus, spec, message):
    if qrels is not None:
        _rewrite(moment_folder, "qrels.jsonl", qrels)
    if corpus is not None:
        _rewrite(moment_folder, "corpus.jsonl", corpus)
    if spec is not None:
        (moment_folder / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(EvaluationError, match=message):
        load_dataset(moment_folder)


def test_moments_end_to_end_are_those_of_the_range_inputs(moment_folder, tiny_path, model, tmp_path, capsys):
    """The scores are those of each window embedded alone as a range input; a re-run takes them from the cache."""
    cache = tmp_path / "cache"
    details = evaluate(
        moment_folder.parent, str(tiny_path), segment_window=4.0, segment_stride=2.0, cache_dir=cache, output=None
    )
    spans = remote_module("processing_gve").segment_spans(10.0, 4.0, 2.0)
    assert spans == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    video = str(moment_folder.parent / "long.mp4")
    windows = model.encode([{"video": video, "video_start": s, "video_end": e} for s, e in spans]).numpy()
    queries = model.encode(["the square enters", "the square leaves"], instruction=query_instruction()).numpy()
    relevant = [[(0.0, 3.5)], [(6.0, 10.0), (1.0, 2.0)]]
    expected = {"R@1,IoU=0.5": 0.0, "R@1,IoU=0.7": 0.0, "mIoU": 0.0}
    for query, moments in zip(queries, relevant, strict=True):
        ious = np.max([temporal_iou(np.array(spans), span) for span in moments], axis=0)
        top = np.lexsort((ious, -(windows @ query).astype(np.float64)))[0]
        expected["R@1,IoU=0.5"] += (ious[top] >= 0.5) / 2
        expected["R@1,IoU=0.7"] += (ious[top] >= 0.7) / 2
        expected["mIoU"] += ious[top] / 2
    result = details["datasets"]["MR-mini"]
    assert {name: result["scores"][name] for name in expected} == pytest.approx(expected, abs=1e-6)
    assert result["score"] == result["scores"]["R@1,IoU=0.5"]
    assert details["model"]["segments"] == {"window": 4.0, "stride": 2.0, "videos": False}
    out = capsys.readouterr().out
    assert "videos as segments: 0 cached, 1 to compute" in out
    assert "moments: the top segment's temporal IoU with the relevant span (windows of 4 s every 2 s)" in out

    evaluate(moment_folder.parent, str(tiny_path), segment_window=4.0, segment_stride=2.0, cache_dir=cache, output=None)
    assert "videos as segments: 1 cached, 0 to compute" in capsys.readouterr().out
    # the model's defaults: the tiny checkpoint's 8 frames at 1 fps make 8-second windows, every 4 seconds
    details = evaluate(moment_folder.parent, str(tiny_path), cache_dir=cache, output=None, report=False)
    assert details["model"]["segments"] == {"window": 8.0, "stride": 4.0, "videos": False}


def test_segment_options_are_checked(moment_folder, tiny_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(moment_folder.parent), "--model", str(tiny_path), "--segment-stride", "6", "--segment-window", "4"])
    assert exit_info.value.code == 2
    assert "--segment-window/--segment-stride: stride (6 s) must be at most window (4 s)" in capsys.readouterr().err


def test_moments_refuse_compact_vectors_before_any_work(moment_folder, tiny_path, monkeypatch):
    from gve_tools.evaluation import runner
    from gve_tools.vectors import VectorFormat

    monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("the model loaded"))
    with pytest.raises(EvaluationError, match=r"^MR-mini: moments are scored with float32 vectors only$"):
        evaluate(moment_folder.parent, str(tiny_path), vectors=VectorFormat("binary"), cache_dir=None, output=None)
