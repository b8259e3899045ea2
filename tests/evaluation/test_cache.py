"""gve_tools.evaluation.cache: what keys the embedding cache (checkpoint, settings, input), and embedding failures."""

import os
import shutil

import numpy as np
import pytest

from gve_tools.evaluation.cache import CACHE_VERSION, EmbeddingCache
from gve_tools.evaluation.cli import main
from gve_tools.evaluation.format import EvaluationError
from gve_tools.evaluation.runner import evaluate
from gve_tools.identity import IdentityError, checkpoint_identity
from gve_tools.media import moving_square, write_video

SETTINGS = {"dtype": "float32", "device": "cpu", "max_length": 64}


def test_the_cache_folder_is_keyed_by_the_checkpoint_content_and_the_settings(tmp_path):
    identity = {"model": "m", "folder": "/m", "content": "stat:" + "a" * 64}
    cache = EmbeddingCache.for_checkpoint(tmp_path, identity, SETTINGS)
    assert cache.folder.parent == tmp_path and len(cache.folder.name) == 24
    key = cache.folder / "key.json"
    assert key.read_text().count('"content"') == 1 and f'"version": {CACHE_VERSION}' in key.read_text()
    assert EmbeddingCache.for_checkpoint(tmp_path, {**identity, "model": "elsewhere"}, SETTINGS).folder == cache.folder
    assert EmbeddingCache.for_checkpoint(tmp_path, {**identity, "content": "commit:1"}, SETTINGS).folder != cache.folder
    assert EmbeddingCache.for_checkpoint(tmp_path, identity, {**SETTINGS, "dtype": "bfloat16"}).folder != cache.folder
    # entries round-trip as float32; a torn file is recomputed; no folder is no cache
    cache.put("ab" + "0" * 62, np.array([1.5, 2.0], dtype=np.float64))
    found = cache.get("ab" + "0" * 62)
    assert found.dtype == np.float32 and found.tolist() == [1.5, 2.0]
    (cache.folder / "ab" / ("ab" + "0" * 62 + ".npy")).write_bytes(b"torn")
    assert cache.get("ab" + "0" * 62) is None
    off = EmbeddingCache.for_checkpoint(None, identity, SETTINGS)
    off.put("ab" + "0" * 62, np.zeros(2))
    assert off.folder is None and off.get("ab" + "0" * 62) is None


@pytest.mark.slow
def test_the_cache_key_follows_the_input_and_the_settings(benchmark, tiny_path, tmp_path, capsys, counted):
    benchmark = shutil.copytree(benchmark, tmp_path / "bench")  # this test changes a clip
    cache = tmp_path / "cache"
    args = [str(benchmark), "--model", str(tiny_path), "--cache-dir", str(cache), "--output", str(tmp_path / "r.json")]
    assert main([*args, "--datasets", "TXT-mini"]) == 0
    assert sum(counted) == 8
    counted.clear()
    # a changed clip is embedded again, and only it; CMP-mini's queries are new
    clip = benchmark / "clips" / "red.mp4"
    write_video(clip, moving_square(8, colour="red", direction="left"), fps=8)
    assert main(args) == 0
    assert sum(counted) == 1 + 2
    counted.clear()
    assert main([*args, "--no-cache"]) == 0
    assert sum(counted) == 10
    capsys.readouterr()


@pytest.mark.slow
def test_inputs_that_cannot_be_embedded_are_reported_with_their_line(benchmark, tiny_path, tmp_path, capsys):
    benchmark = shutil.copytree(benchmark, tmp_path / "bench")
    clip = benchmark / "clips" / "green.mp4"
    clip.write_bytes(clip.read_bytes()[:200])
    with pytest.raises(
        EvaluationError,
        match=r"1 input\(s\) could not be embedded:\nCMP-mini: \S*cmp/corpus\.jsonl:2 \(id 'green'\) "
        r"\(also TXT-mini: \S*txt/corpus\.jsonl:2 \(id 'green'\)\): could not read video",
    ):
        evaluate(benchmark, str(tiny_path), cache_dir=tmp_path / "cache", output=None)
    assert "embeddings: 0 cached, 10 to compute" in capsys.readouterr().out
    with pytest.raises(EvaluationError):  # the 9 good inputs were cached
        evaluate(benchmark, str(tiny_path), cache_dir=tmp_path / "cache", output=None)
    assert "embeddings: 9 cached, 1 to compute" in capsys.readouterr().out


def test_checkpoint_identity_of_a_folder(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / "config.json").write_text("{}\n")
    first = checkpoint_identity(str(folder))
    assert first["content"].startswith("stat:") and first["folder"] == str(folder.resolve())
    (folder / "README.md").write_text("a new card\n")
    assert checkpoint_identity(str(folder)) == first  # the card does not change an embedding
    os.utime(folder / "model.safetensors", ns=(1, 1))
    assert checkpoint_identity(str(folder))["content"] != first["content"]


@pytest.mark.slow
def test_checkpoint_identity_of_a_hub_model(hub_cache, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    assert checkpoint_identity("Alibaba-NLP/GVE-tiny")["content"] == "commit:" + "1" * 40
    assert checkpoint_identity("Alibaba-NLP/GVE-tiny", "v2")["content"] == "commit:" + "2" * 40
    with pytest.raises(IdentityError, match="cannot find 'Alibaba-NLP/GVE-nothing'"):
        checkpoint_identity("Alibaba-NLP/GVE-nothing")
