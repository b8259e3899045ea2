"""The corpus tests' fixtures: Ray in local mode, started once per session, and one embedded corpus that the
shard, index and pipeline tests share (so that Ray Data runs over it once)."""

import os
import shutil
from pathlib import Path
from stat import S_ISDIR

import pytest

from gve_tools.corpus import embed_corpus
from tests.corpus.support import write_manifest


@pytest.fixture(scope="session")
def ray_local():
    """Local Ray, started once per test session (or the one already running)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def corpus_rows(media, tmp_path_factory):
    """Texts, images, videos, composed items, a per-item instruction, an integer id and a relative path."""
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(media["image_2"], folder / "local.jpg")
    return folder, [
        {"id": "t-red", "text": "a red square moving to the right"},
        {"id": "t-green", "text": "a green square moving down", "instruction": "Represent the caption."},
        {"id": "img-blue", "image": str(media["image"])},
        {"id": "img-rel", "image": "local.jpg"},
        {"id": "vid-right", "video": str(media["video"])},
        {"id": "vid-down", "video": str(media["video_2"])},
        {"id": 7, "video": str(media["long_video"])},
        {"id": "comp-ti", "text": "a blue square", "image": str(media["image"])},
        {"id": "comp-tv", "text": "the square goes right", "video": str(media["video"])},
        {"id": "t-long", "text": "an empty dark room " * 30},
    ]


@pytest.fixture(scope="session")
def embedded(ray_local, corpus_rows, tiny_path, tmp_path_factory):
    """One run over the corpus: CPU decoding tasks plus one model actor, shards of 4 rows."""
    folder, rows = corpus_rows
    manifest = write_manifest(folder / "manifest.jsonl", rows)
    out = tmp_path_factory.mktemp("embedded") / "out"
    summary = embed_corpus(manifest, out, str(tiny_path), shard_size=4, batch_size=4, show_progress_bar=False)
    return manifest, out, summary


@pytest.fixture
def sync_log(monkeypatch):
    """Every os.fsync and os.replace, in order: ("fsync", inode, is a folder) and ("replace", inode, target)."""
    calls = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(descriptor):
        info = os.fstat(descriptor)
        calls.append(("fsync", info.st_ino, S_ISDIR(info.st_mode)))
        fsync(descriptor)

    def logged_replace(source, target):
        calls.append(("replace", os.stat(source).st_ino, Path(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    return calls
