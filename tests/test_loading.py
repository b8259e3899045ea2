"""Loading: both key layouts, incomplete checkpoints, stock loaders, the Hub cache and the root config."""

import json
import shutil
import textwrap

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
)

from gve_tools.repo import REMOTE_CODE_FILES, ROOT
from tests.hub import run_offline


@pytest.mark.parametrize("layout", ["v5", "legacy"])
def test_both_key_layouts_load_completely(request, model, layout):
    path = request.getfixturevalue("tiny_path" if layout == "v5" else "tiny_legacy_path")
    keys = load_file(path / "model.safetensors").keys()
    prefixes = {
        "v5": ("model.language_model.", "model.visual.", "lm_head."),
        "legacy": ("model.", "visual.", "lm_head."),
    }
    assert all(key.startswith(prefixes[layout]) for key in keys)
    assert any(key.startswith("lm_head.") for key in keys)  # present, and ignored
    loaded, info = AutoModel.from_pretrained(path, trust_remote_code=True, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set() or not info["mismatched_keys"]
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("dropped", ["model.visual.", "model.language_model.layers.1.", "model.language_model.norm."])
def test_incomplete_checkpoint_is_refused(tiny_path, tmp_path, dropped):
    copy = shutil.copytree(tiny_path, tmp_path / "incomplete")
    weights = load_file(copy / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith(dropped)}, copy / "model.safetensors")
    with pytest.raises(ValueError, match=r"does not cover the GVE backbone: \d+ weight\(s\) missing.*random weights"):
        AutoModel.from_pretrained(copy, trust_remote_code=True)


@pytest.mark.parametrize("layout", ["v5", "legacy"])
def test_stock_generation_class_loads_the_whole_backbone(request, layout):
    path = request.getfixturevalue("tiny_path" if layout == "v5" else "tiny_legacy_path")
    _, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()


def test_without_remote_code_the_folder_loads_as_stock_qwen(tiny_path, processor):
    config = AutoConfig.from_pretrained(tiny_path)
    assert type(config) is Qwen2_5_VLConfig
    stock = AutoProcessor.from_pretrained(tiny_path)
    assert type(stock) is Qwen2_5_VLProcessor
    assert stock.chat_template == processor.chat_template
    assert stock.tokenizer.padding_side == "left"
    assert type(AutoProcessor.from_pretrained(tiny_path, trust_remote_code=True)).__name__ == "GVEProcessor"


def test_processor_save_and_load_round_trip(processor, tiny_path, tmp_path):
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"
    assert saved["auto_map"] == {"AutoProcessor": "processing_gve.GVEProcessor"}
    for name in REMOTE_CODE_FILES:
        shutil.copy(tiny_path / name, tmp_path / name)
    shutil.copy(tiny_path / "config.json", tmp_path / "config.json")
    reloaded = AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    assert reloaded.embedding_config.to_dict() == processor.embedding_config.to_dict()
    inputs = ["a text", {"text": "x", "image": Image.new("RGB", (64, 40), "red")}]
    expected = processor.prepare(inputs)
    for key, value in reloaded.prepare(inputs).items():
        torch.testing.assert_close(value, expected[key])


def test_root_config_has_the_published_gve_7b_shapes():
    config = AutoConfig.from_pretrained(ROOT, trust_remote_code=True)
    assert type(config).__name__ == "GVEConfig" and config.model_type == "qwen2_5_vl"
    assert config.auto_map == {"AutoConfig": "configuration_gve.GVEConfig", "AutoModel": "modeling_gve.GVEModel"}
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (3584, 18944, 28)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (28, 4, 152064)
    assert text.rope_parameters["rope_theta"] == 1e6 and text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (vision.depth, vision.hidden_size, vision.intermediate_size, vision.num_heads) == (32, 1280, 3420, 16)
    assert (vision.patch_size, vision.temporal_patch_size, vision.spatial_merge_size) == (14, 2, 2)
    assert (vision.window_size, list(vision.fullatt_block_indexes), vision.out_hidden_size) == (
        112,
        [7, 15, 23, 31],
        3584,
    )
    assert not config.tie_word_embeddings
    assert (config.image_token_id, config.video_token_id) == (151655, 151656)
    assert (config.vision_start_token_id, config.vision_end_token_id, config.pooling_token_id) == (
        151652,
        151653,
        151643,
    )
    assert config.default_instruction == "You are a helpful assistant."
    assert (config.video_fps, config.video_max_frames, config.video_max_pixels) == (1.0, 8, 200 * 28 * 28)
    with torch.device("meta"):
        backbone = AutoModel.from_config(config, trust_remote_code=True)
    lm_head = 152064 * 3584  # GVE-7B's published count, 8,292,166,656, includes its lm_head
    assert sum(p.numel() for p in backbone.parameters()) == 8_292_166_656 - lm_head


HUB_SCRIPT = textwrap.dedent(
    """
    import json, sys
    for blocked in ("qwen_vl_utils", "decord", "flash_attn", "torchcodec", "av"):
        sys.modules[blocked] = None  # text needs none of the optional media libraries
    from transformers import AutoModel, AutoProcessor
    model = AutoModel.from_pretrained("Alibaba-NLP/GVE-tiny", trust_remote_code=True)
    processor = AutoProcessor.from_pretrained("Alibaba-NLP/GVE-tiny", trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
    assert type(processor).__name__ == "GVEProcessor", type(processor)
    assert processor.embedding_config.pooling_token_id == model.config.pooling_token_id
    embedding = model.encode(["a red square moves to the right"])
    try:
        model.encode(["photo.png"])
    except ImportError as error:
        assert "needs qwen-vl-utils: pip install qwen-vl-utils" in str(error), error
    else:
        raise AssertionError("media without qwen-vl-utils must raise ImportError")
    pinned = AutoModel.from_pretrained("Alibaba-NLP/GVE-tiny", trust_remote_code=True, revision="v2")
    print(json.dumps({
        "main": embedding.tolist(),
        "v2_instruction": pinned.processor.embedding_config.default_instruction,
        "v2": pinned.encode(["a red square moves to the right"]).tolist(),
    }))
    """
)


@pytest.mark.slow
def test_hub_repo_id_loads_offline_from_a_populated_cache(hub_cache, model, tmp_path):
    """The real Hub code path, with a Hub cache filled locally and HF_HUB_OFFLINE=1.

    A model pinned to the tag `v2` (whose config changes the default instruction) must load its
    processor and settings from `v2` too.
    """
    output = run_offline(HUB_SCRIPT, hub_cache, tmp_path)
    text = ["a red square moves to the right"]
    torch.testing.assert_close(torch.tensor(output["main"]), model.encode(text))
    assert output["v2_instruction"] == "Revision two."
    torch.testing.assert_close(torch.tensor(output["v2"]), model.encode(text, instruction="Revision two."))
    assert any((tmp_path / "modules" / "transformers_modules").rglob("modeling_gve.py"))
