"""gve_tools.video_search.cli and scripts/video_search.py: the command line's queries and the help."""

import subprocess
import sys

import pytest

from gve_tools import video_search as vs
from gve_tools.repo import ROOT
from tests.video_search.support import brute_force


@pytest.mark.slow
def test_command_line_queries_replace_the_file(tiny_path, model, clips, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(clips)
    code = vs.main(
        [
            *("--model", str(tiny_path), "--videos", "videos", "--output", str(tmp_path), "--top-k", "2"),
            *("--text", "a red square", "a green square", "--video", "queries/probe.mp4"),
            *("--composed", "moving left", "queries/blue.png", "--composed", "in red", "queries/probe.mp4"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for header in (
        "[1/5] text 1",
        "[2/5] text 2",
        "[3/5] video 1",
        "[4/5] composed 1  (text + image: ",
        "[5/5] composed 2",
    ):
        assert header in out
    assert "red <b>square</b>" not in out and "expected video first" not in out
    queries = vs.command_line_queries(
        ["a red square", "a green square"],
        videos=["queries/probe.mp4"],
        composed=[["moving left", "queries/blue.png"], ["in red", "queries/probe.mp4"]],
    )
    videos = vs.list_videos(clips / "videos")
    scores = brute_force(model, videos, queries)
    best = [videos[i].relative_to(clips / "videos").as_posix() for i in scores.argmax(dim=1).tolist()]
    tables = out.split("\n[")[1:]
    for table, name in zip(tables, best, strict=True):
        assert "     1  " in table.splitlines()[2] and name in table.splitlines()[2]


@pytest.mark.slow
def test_help_explains_the_job():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "video_search.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for words in ("--model", "--videos", "--queries", "--composed TEXT MEDIA", "--top-k", "--output", "--dtype"):
        assert words in result.stdout, words
    for words in ("--no-segments", "--window SECONDS", "--stride SECONDS", '"expected_start"', "IoU >= 0.5"):
        assert words in result.stdout, words
    for words in ("bundled/gve-tiny-synthetic", "Alibaba-NLP/GVE-3B", "results.html", "cache", "recursively"):
        assert words in result.stdout, words
    assert "remote code" in result.stdout  # what keys the cache


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "0"], "--window/--stride: window must be a finite number of seconds above 0, got 0"),
        (["--stride", "nan"], "--window/--stride: stride must be a finite number of seconds above 0, got nan"),
        (["--window", "2", "--stride", "3"], "--window/--stride: stride (3 s) must be at most window (2 s)"),
        (["--no-segments", "--stride", "1"], "--stride sets the segments, which --no-segments turns off"),
    ],
)
def test_bad_segment_settings_are_explained(clips, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        vs.main(["--videos", str(clips / "videos"), "--text", "a", "--output", str(tmp_path), *args])
    assert exit_info.value.code == 1
    assert f"error: {message}" in capsys.readouterr().err


def test_a_stride_longer_than_the_checkpoints_window_is_explained(tiny_path, clips, tmp_path, capsys):
    args = ["--model", str(tiny_path), "--videos", str(clips / "videos"), "--output", str(tmp_path), "--text", "a"]
    with pytest.raises(SystemExit) as exit_info:
        vs.main([*args, "--stride", "9"])
    assert exit_info.value.code == 1
    # the tiny checkpoint samples 8 frames at 1 fps: 8-second windows
    assert "\nerror: --window/--stride: stride (9 s) must be at most window (8 s)" in capsys.readouterr().err
