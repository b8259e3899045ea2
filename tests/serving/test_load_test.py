"""The load test (`scripts/load_test.py`) against the session's deployment: its answers checked against
`model.encode`, its bad requests refused naming their fields; and that it sends to 127.0.0.1 only."""

import json

import pytest

from gve_tools.serving.load_test import loopback
from gve_tools.serving.load_test_cli import main

pytestmark = pytest.mark.ray


def test_a_small_run_checks_every_answer(server, tiny_path, tmp_path, capsys):
    out = tmp_path / "figures.json"
    corpus = ["--corpus-dir", str(tmp_path / "corpus"), "--videos", "3", "--images", "1", "--texts", "2"]
    args = ["--url", server, "--model", str(tiny_path), "--clients", "4", "--warmup", "0", "--bad-share", "0.5"]
    assert main([*args, *corpus, "--output", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["run"]["outcomes"] == {"ok": 6, "refused as expected": 6}
    assert figures["batches"]["items"] >= 6 and figures["offline"]["items"] == 6
    assert "latency of good requests: p50" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "https://127.0.0.1:8000"])
def test_it_sends_to_loopback_only(url):
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        loopback(url)
