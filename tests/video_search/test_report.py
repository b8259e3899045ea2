"""gve_tools.video_search.report: ranking by cosine similarity, and the terminal tables."""

from pathlib import Path

import torch
import torch.nn.functional as F

from gve_tools import video_search as vs


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
