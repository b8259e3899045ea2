"""gve_tools.video_search.report: ranking by cosine similarity, and the terminal tables."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gve_tools import video_search as vs
from gve_tools.text import seconds


def test_rank_orders_by_score_and_finds_the_expected_rank():
    folder = Path("/videos")
    videos = [folder / "a.mp4", folder / "sub" / "b.mp4", folder / "c.mp4"]
    documents = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=1)
    queries = [
        vs.Query("towards b", text="b", expected="sub/b.mp4"),
        vs.Query("towards c", text="c", expected="a.mp4"),  # by file name, last
        vs.Query("none", text="n"),
        vs.Query("missing", text="m", expected="z.mp4"),
    ]
    embeddings = F.normalize(torch.tensor([[0.5, 0.7], [0.0, 1.0], [1.0, 0.1], [1.0, 0.9]]), dim=1)
    results = vs.rank(embeddings, documents, videos, folder, queries, top_k=2)
    assert [[hit.video for hit in result.hits] for result in results] == [
        ["sub/b.mp4", "c.mp4"],
        ["c.mp4", "sub/b.mp4"],
        ["a.mp4", "sub/b.mp4"],
        ["sub/b.mp4", "a.mp4"],
    ]
    assert [hit.rank for hit in results[0].hits] == [1, 2]
    assert results[0].hits[0].path == folder / "sub" / "b.mp4"
    torch.testing.assert_close(results[1].hits[0].score, float(embeddings[1] @ documents[2]))
    assert [result.expected_rank for result in results] == [1, 3, None, None]
    assert [result.expected_first for result in results] == [True, False, None, False]


def test_the_table_marks_the_expected_video_and_counts_firsts_per_kind():
    hits = [vs.Hit(1, "a.mp4", Path("/v/a.mp4"), 0.91234), vs.Hit(2, "sub/long_name.mp4", Path("/v/x.mp4"), -0.05)]
    results = [
        vs.QueryResult(vs.Query("first", text="a red square", expected="a.mp4"), hits, 1),
        vs.QueryResult(vs.Query("second", text="a blue one", expected="sub/long_name.mp4"), hits, 2),
        vs.QueryResult(vs.Query("third", text="gone", expected="gone.mp4"), hits, None),
        vs.QueryResult(vs.Query("fourth", image=Path("/q/x.png")), hits),
    ]
    lines = vs.format_results(results).splitlines()
    assert lines[:5] == [
        "",
        '[1/4] first  (text: "a red square")',
        "  rank    score  video",
        "     1   0.9123  a.mp4              ✓ expected",
        "     2  -0.0500  sub/long_name.mp4",
    ]
    assert "  ✓ the expected video a.mp4 comes first" in lines
    assert "     2  -0.0500  sub/long_name.mp4  ✓ expected" in lines
    assert "  ✗ the expected video sub/long_name.mp4 comes at rank 2, not first" in lines
    assert "  ✗ the expected video gone.mp4 is not in the index" in lines
    assert "[4/4] fourth  (image: /q/x.png)" in lines
    assert lines[-1] == "expected video first: 1/3 queries (text 1/3)"


def test_a_video_of_segments_scores_as_its_best_segment_and_names_its_range():
    folder = Path("/videos")
    videos = [folder / "short.mp4", folder / "long.mp4"]
    rows = [(0, None), (1, (0.0, 4.0)), (1, (2.0, 6.0)), (1, (4.0, 8.0))]
    documents = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, 1.0]]), dim=1)
    queries = [
        vs.Query("the end of long", text="c", expected="long.mp4", expected_start=4.5, expected_end=8.5),
        vs.Query("the middle of long", text="b", expected="long.mp4", expected_start=0.0, expected_end=4.0),
        vs.Query("short", text="a", expected="short.mp4"),
    ]
    embeddings = F.normalize(torch.tensor([[0.0, 0.1, 1.0], [0.1, 0.7, 0.7], [1.0, 0.2, 0.0]]), dim=1)
    results = vs.rank(embeddings, documents, videos, folder, queries, top_k=2, rows=rows)
    scores = embeddings @ documents.T
    end, middle, short = results
    assert [(hit.video, hit.span) for hit in end.hits] == [("long.mp4", (4.0, 8.0)), ("short.mp4", None)]
    assert end.hits[0].score == pytest.approx(float(scores[0, 1:].max()))  # the best of its segments
    assert end.hits[0].label == "long.mp4 [4.0-8.0 s]" and end.hits[1].label == "short.mp4"
    assert end.moment_iou == pytest.approx(3.5 / 4.5) and end.moment_first
    assert middle.hits[0].span == (2.0, 6.0) and middle.moment_iou == pytest.approx(2 / 6) and not middle.moment_first
    assert middle.expected_first  # the right video, the wrong moment
    assert [hit.video for hit in short.hits] == ["short.mp4", "long.mp4"] and short.hits[1].span == (0.0, 4.0)
    assert short.moment_iou is None and short.moment_first is None

    lines = vs.format_results(results).splitlines()
    assert "     1   0.9950  long.mp4 [4.0-8.0 s]  ✓ expected" in lines
    assert "  ✓ the expected moment long.mp4 [4.5-8.5 s] comes first: long.mp4 [4.0-8.0 s], IoU 0.78" in lines
    wrong = "  ✗ the expected moment long.mp4 [0.0-4.0 s] is not first: the first hit is long.mp4 [2.0-6.0 s]"
    assert f"{wrong}, IoU 0.33 < 0.5" in lines
    assert lines[-2:] == [
        "expected video first: 1/1 queries (text 1/1)",
        "moment queries: 1/2 right moment first (IoU >= 0.5; text 1/2)",
    ]


def test_a_moment_is_missed_when_another_video_or_a_whole_one_comes_first():
    hits = [vs.Hit(1, "long.mp4", Path("/v/long.mp4"), 0.5), vs.Hit(2, "other.mp4", Path("/v/other.mp4"), 0.4)]
    query = vs.Query("m", text="t", expected="long.mp4", expected_start=1.0, expected_end=5.0)
    whole = vs.QueryResult(query, hits, 1)  # --no-segments: the right video, no range
    other = vs.QueryResult(query, hits[::-1], 2)
    assert whole.moment_iou == 0 and not whole.moment_first and other.moment_iou == 0 and not other.moment_first
    text = vs.format_results([whole, other])
    assert "  ✗ the expected moment long.mp4 [1.0-5.0 s] is not first: the video was indexed whole, without " in text
    assert "  ✗ the expected moment long.mp4 [1.0-5.0 s] is not first: the first hit is another video" in text
    assert text.splitlines()[-1] == "moment queries: 0/2 right moment first (IoU >= 0.5; text 0/2)"
    assert "expected video first" not in text  # moment queries are counted apart


def test_temporal_iou_and_seconds():
    assert vs.temporal_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert vs.temporal_iou((0, 4), (4, 8)) == 0 and vs.temporal_iou((1, 3), (0, 4)) == 0.5
    assert [seconds(x) for x in (8, 7.75, 31.25, 0.5, 12.0)] == ["8.0", "7.75", "31.25", "0.5", "12.0"]
