"""Shared fixtures: tiny GVE checkpoints, the stock Qwen2.5-VL reference and synthetic media."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from gve_tools.loopback import serve_folder  # noqa: E402
from gve_tools.media import moving_square, write_image, write_video  # noqa: E402
from gve_tools.repo import ROOT  # noqa: E402
from gve_tools.tiny import make_tiny_checkpoint  # noqa: E402

torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory) -> Path:
    """A tiny GVE checkpoint in the transformers 5.x key layout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "gve-tiny", layout="v5", seed=0)


@pytest.fixture(scope="session")
def tiny_legacy_path(tmp_path_factory) -> Path:
    """The same weights in the legacy key layout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "gve-tiny-legacy", layout="legacy", seed=0)


@pytest.fixture(scope="session")
def model(tiny_path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(tiny_path, trust_remote_code=True).eval()


@pytest.fixture(scope="session")
def processor(model):
    return model.processor


@pytest.fixture(params=["torchcodec", "decord"])
def video_reader(request, monkeypatch, processor) -> str:
    """Each video reader in turn, forced through `GVE_VIDEO_READER` (qwen-vl-utils is set to the same one)."""
    processing = sys.modules[type(processor).__module__]
    monkeypatch.setenv("GVE_VIDEO_READER", request.param)
    processing.video_reader.cache_clear()
    assert processing.video_reader() == request.param
    yield request.param
    processing.video_reader.cache_clear()  # chosen again, from the restored environment, at the next read


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Synthetic media, good and bad, by name."""
    folder = tmp_path_factory.mktemp("media")
    files = {
        "image": write_image(folder / "square.png", colour="blue"),
        "image_2": write_image(folder / "other.jpg", colour="yellow", seed=1),
        "video": write_video(folder / "right.mp4", moving_square(16, colour="red", direction="right"), fps=8),
        "video_2": write_video(folder / "down.mp4", moving_square(24, colour="green", direction="down"), fps=8),
        "long_video": write_video(folder / "long.mp4", moving_square(80, colour="white", direction="left"), fps=8),
        "one_frame_video": write_video(folder / "one.mp4", moving_square(1), fps=8),
    }
    (folder / "empty.mp4").write_bytes(b"")
    files["empty_video"] = folder / "empty.mp4"
    data = files["long_video"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    files["truncated_video"] = folder / "truncated.mp4"
    (folder / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    files["text_as_video"] = folder / "notes.mp4"
    (folder / "notes.txt").write_text("plain text\n")
    files["text_file"] = folder / "notes.txt"
    data = files["image"].read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    files["truncated_image"] = folder / "truncated.png"
    return files


HUB_REPO = "Alibaba-NLP/GVE-tiny"


@pytest.fixture(scope="session")
def hub_cache(tiny_path, tmp_path_factory) -> Path:
    """A Hugging Face Hub cache holding the tiny checkpoint as `Alibaba-NLP/GVE-tiny`, filled locally.

    It has `main` and a tag `v2` whose config changes the default instruction to "Revision two.".
    """
    cache = tmp_path_factory.mktemp("hub")
    repo = cache / ("models--" + HUB_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    for ref, commit in (("main", "1" * 40), ("v2", "2" * 40)):
        (repo / "refs" / ref).write_text(commit)
        snapshot = shutil.copytree(tiny_path, repo / "snapshots" / commit)
    config = json.loads((snapshot / "config.json").read_text())
    (snapshot / "config.json").write_text(json.dumps({**config, "default_instruction": "Revision two."}))
    return cache


@pytest.fixture(scope="session")
def http_root(media):
    """A loopback HTTP server over the media folder; yields its base URL."""
    url, server = serve_folder(media["image"].parent)
    yield url
    server.shutdown()


def make_adapter(base_path, out, seed: int = 0, **config_changes):
    """A LoRA adapter on both towers of a Qwen2.5-VL base, with random (non-zero) B matrices."""
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(base_path, dtype=torch.float32)
    if config_changes:  # an adapter for another base: same module names, other shapes
        config = model.config
        for key, value in config_changes.items():
            setattr(config.text_config, key, value)
        model = Qwen2_5_VLForConditionalGeneration(config)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "qkv", "down_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    lora.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def adapter(tiny_path, tmp_path_factory):
    return make_adapter(tiny_path, tmp_path_factory.mktemp("adapter") / "lora")


@pytest.fixture(scope="session")
def built(tiny_path, adapter, tmp_path_factory):
    """The folder built by the command line, in float32, in small shards."""
    out = tmp_path_factory.mktemp("built") / "GVE-tiny"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_checkpoint.py"),
            "--base",
            str(tiny_path),
            "--adapter",
            str(adapter),
            "--out",
            str(out),
            "--dtype",
            "float32",
            "--max-shard-size",
            "300KB",
            "--model-id",
            "Alibaba-NLP/GVE-tiny",
            "--base-model",
            "Qwen/Qwen2.5-VL-3B-Instruct",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reload cosine" in result.stdout
    return out
