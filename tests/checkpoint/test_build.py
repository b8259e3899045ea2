"""scripts/build_checkpoint.py: merge a LoRA into a tiny base, build the folder, reload it every way."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoModel, Qwen2_5_VLForConditionalGeneration

from gve_tools.checkpoint.build import CheckpointError, build_checkpoint, check_folder
from gve_tools.repo import REQUIRED_FILES, ROOT
from tests.conftest import make_adapter
from tests.hub import run_offline
from tests.reference import stock_embeddings

pytestmark = pytest.mark.slow  # every test builds a checkpoint or runs the command

SCRIPT = str(ROOT / "scripts" / "build_checkpoint.py")
SCRIPT_PY = sys.executable
PARITY = 0.9999


@pytest.fixture(scope="module")
def adapter_reference(tiny_path, adapter, media):
    """Embeddings of the unmerged adapter model (stock classes, peft), as the reference."""
    from peft import PeftModel
    from transformers import AutoProcessor

    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_path, dtype=torch.float32)
    lora = PeftModel.from_pretrained(base, str(adapter)).eval()
    items = [
        {"text": "a red square"},
        {"image": media["image"]},
        {"video": media["video"]},
        {"text": "moving", "video": media["video_2"]},
    ]
    return items, stock_embeddings(lora.get_base_model().model, AutoProcessor.from_pretrained(tiny_path), items)


def as_inputs(items):
    return [{key: str(value) for key, value in item.items()} for item in items]


def test_built_folder_is_complete_and_sharded(built):
    for name in REQUIRED_FILES:
        assert (built / name).is_file(), name
    index = json.loads((built / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all((built / shard).is_file() for shard in shards)
    keys = set(index["weight_map"])
    assert all(key.startswith(("model.language_model.", "model.visual.", "lm_head.")) for key in keys)
    assert not any("lora_" in key or "base_layer" in key for key in keys)
    config = json.loads((built / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_gve.GVEConfig", "AutoModel": "modeling_gve.GVEModel"}
    assert config["model_type"] == "qwen2_5_vl" and config["pooling_token_id"] == 306 and config["dtype"] == "float32"
    assert json.loads((built / "processor_config.json").read_text())["auto_map"]["AutoProcessor"]
    with safe_open(built / shards[0], framework="pt") as file:
        assert all(file.get_tensor(key).dtype == torch.float32 for key in file.keys())
    card = (built / "README.md").read_text()
    assert "Alibaba-NLP/GVE-tiny" in card and "base_model: Qwen/Qwen2.5-VL-3B-Instruct" in card
    # the Hub rendering: nothing that is not on the Hub (the Makefile, scripts/, bundled/ are never uploaded)
    for reference in ("make demo", "make test", "`make", "scripts/", "bundled/", "benchmarks/", "tests/"):
        assert reference not in card, reference
    assert "## Inference Endpoints" in card and "## Development" not in card and "source repository" in card
    assert json.loads((built / "tokenizer_config.json").read_text())["padding_side"] == "left"
    assert not list(built.parent.glob(".*building*"))
    check_folder(built)


def test_reloads_equal_the_unmerged_adapter_model(built, adapter_reference, tiny_path):
    items, reference = adapter_reference
    model = AutoModel.from_pretrained(built, trust_remote_code=True)
    embeddings = model.encode(as_inputs(items))
    assert torch.all(F.cosine_similarity(embeddings, reference) >= PARITY)
    # the adapter really changed the model
    base = AutoModel.from_pretrained(tiny_path, trust_remote_code=True)
    assert F.cosine_similarity(base.encode(as_inputs(items)), reference).max() < 0.999


def test_reloads_through_sentence_transformers_and_a_hub_cache(built, adapter_reference, tmp_path):
    from sentence_transformers import SentenceTransformer

    items, reference = adapter_reference
    st = SentenceTransformer(str(built), trust_remote_code=True, device="cpu")
    assert torch.all(F.cosine_similarity(st.encode(as_inputs(items), convert_to_tensor=True), reference) >= PARITY)

    cache = tmp_path / "hub"
    repo = cache / "models--Alibaba-NLP--GVE-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("3" * 40)
    import shutil

    shutil.copytree(built, repo / "snapshots" / ("3" * 40))
    script = textwrap.dedent(
        f"""
        import json
        from transformers import AutoModel
        model = AutoModel.from_pretrained("Alibaba-NLP/GVE-tiny", trust_remote_code=True)
        print(json.dumps(model.encode({json.dumps(as_inputs(items))}).tolist()))
        """
    )
    embeddings = torch.tensor(run_offline(script, cache, tmp_path))
    assert torch.all(F.cosine_similarity(embeddings, reference) >= PARITY)


def test_default_bf16_build_and_repackaging_a_legacy_checkpoint(tiny_legacy_path, model, tmp_path, media):
    out = build_checkpoint(
        tmp_path / "repackaged",
        merged=str(tiny_legacy_path),
        max_shard_size="300KB",
        base_model="Qwen/Qwen2.5-VL-3B-Instruct",
    )
    keys = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert all(key.startswith(("model.language_model.", "model.visual.", "lm_head.")) for key in keys)
    with safe_open(out / sorted(set(keys.values()))[0], framework="pt") as file:
        assert {file.get_tensor(key).dtype for key in file.keys()} == {torch.bfloat16}
    inputs = ["a red square", str(media["image"]), str(media["video"])]
    reloaded = AutoModel.from_pretrained(out, trust_remote_code=True, dtype=torch.float32)
    assert torch.all(F.cosine_similarity(reloaded.encode(inputs), model.encode(inputs)) >= 0.99)


def test_adapter_for_another_base_is_refused(tiny_path, tmp_path):
    wrong = make_adapter(tiny_path, tmp_path / "wrong", intermediate_size=96)
    with pytest.raises(CheckpointError, match=r"adapter .* does not fit base"):
        build_checkpoint(
            tmp_path / "out", base=str(tiny_path), adapter=str(wrong), base_model="Qwen/Qwen2.5-VL-3B-Instruct"
        )
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.building-*"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--base", "BASE", "--adapter", "/nonexistent/adapter"], "adapter not found: '/nonexistent/adapter'"),
        (["--base", "BASE"], "give --base and --adapter (to merge a LoRA), or --merged"),
        (["--merged", "BASE", "--adapter", "/x"], "give either --merged, or --base with --adapter, not both"),
        (["--merged", "BASE"], "give --base-model: the Hub id of the base model"),
        (
            ["--merged", "BASE", "--base-model", "Qwen/Qwen2.5-VL-3B-Instruct", "--results", "/nonexistent/r.json"],
            "cannot write the model card: results file /nonexistent/r.json does not exist",
        ),
    ],
)
def test_bad_arguments_fail_clearly(tiny_path, tmp_path, arguments, message):
    arguments = [str(tiny_path) if value == "BASE" else value for value in arguments]
    result = subprocess.run(
        [SCRIPT_PY, SCRIPT, *arguments, "--out", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "o").exists()


def test_existing_output_is_not_overwritten(tiny_path, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(CheckpointError, match="already exists"):
        build_checkpoint(tmp_path / "taken", merged=str(tiny_path), base_model="Qwen/Qwen2.5-VL-3B-Instruct")


def test_help():
    result = subprocess.run([SCRIPT_PY, SCRIPT, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--base", "--adapter", "--merged", "--dtype", "--max-shard-size", "--out"):
        assert option in result.stdout


def test_check_folder_names_what_is_wrong(built, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    broken = shutil.copytree(built, tmp_path / "broken")
    (broken / "handler.py").unlink()
    index_path = broken / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    dropped = next(key for key in index["weight_map"] if key.startswith("model.visual."))
    shard = broken / index["weight_map"].pop(dropped)
    tensors = load_file(shard)
    del tensors[dropped]
    leftover = "model.language_model.layers.0.self_attn.q_proj.lora_A.weight"
    tensors[leftover] = torch.zeros(4, 64)
    index["weight_map"][leftover] = shard.name
    save_file(tensors, shard)
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"missing file handler\.py; 1 unmerged LoRA tensor") as caught:
        check_folder(broken)
    (broken / "handler.py").write_text("")
    del tensors[leftover], index["weight_map"][leftover]
    save_file(tensors, shard)
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"1 backbone tensor\(s\) missing"):
        check_folder(broken)
    assert "broken" in str(caught.value)
