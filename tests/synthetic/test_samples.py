"""The main job's sample clips and queries (gve_tools.synthetic.samples)."""

import json

from gve_tools.synthetic.samples import make_samples


def test_samples_name_their_expected_clips(tmp_path):
    count = make_samples(tmp_path)
    queries = json.loads((tmp_path / "queries.json").read_text())
    expected = [query["expected"] for query in queries if "expected" in query]
    assert len(expected) == len(queries) and set(expected) <= {p.name for p in (tmp_path / "videos").iterdir()}
    assert count == len(list((tmp_path / "videos").iterdir()))
    assert {key for query in queries for key in query} >= {"text", "image", "video"}
