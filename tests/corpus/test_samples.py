"""gve_tools.corpus.samples and its command: a mixed corpus whose manifest the pipeline accepts, with bad items."""

import json
from pathlib import Path

from gve_tools.corpus.manifest import validate_manifest
from gve_tools.corpus.samples import make_sample_manifest
from gve_tools.corpus.samples_cli import main


def test_the_sample_manifest_is_a_valid_mixed_corpus(tmp_path):
    manifest = make_sample_manifest(tmp_path, items=10, bad=3)
    text = manifest.read_text()
    rows = validate_manifest([json.loads(line) for line in text.splitlines()], base=tmp_path)
    kinds = [row["id"].split("-")[0] for row in rows]
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {"video": 4, "image": 3, "text": 3, "bad": 3}
    for row in rows:
        media = [Path(row[key]) for key in ("image", "video") if row[key]]
        if row["id"].startswith(("video", "image")):
            assert len(media) == 1 and media[0].is_file() and media[0].stat().st_size > 0
    bad = {row["id"]: Path(row["video"]) for row in rows if row["id"].startswith("bad")}
    assert not bad["bad-00000"].exists() and bad["bad-00001"].stat().st_size == 0 and bad["bad-00002"].is_file()

    written = {path: path.stat().st_mtime_ns for path in (tmp_path / "media").glob("*-*.*")}
    assert make_sample_manifest(tmp_path, items=10, bad=3).read_text() == text  # the same rows again
    assert {path: path.stat().st_mtime_ns for path in written} == written  # and the media files reused


def test_the_command_prints_the_manifest_path(tmp_path, capsys):
    assert main([str(tmp_path), "--items", "3", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "manifest.jsonl")
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 3
