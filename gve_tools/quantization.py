"""Low-memory weights: the one home of GVE's weight settings, their quantization configs and their memory.

A weight setting says how the language model's Linear weights are stored; everything else (the vision tower, the
token embeddings, norms and biases) keeps the load dtype. Quantizing the vision tower is reported to wreck Qwen2-VL
outputs, so it is never converted.

    float   no quantizer: every weight in the load dtype (the default, and what the published numbers use)
    int8    8-bit Linear weights with one scale per output channel: bitsandbytes LLM.int8 on CUDA GPUs, torchao's
            int8 weight-only config on the CPU
    int4    4-bit Linear weights: bitsandbytes NF4 (blocks of 64, double-quantized scales), computing in bf16 on
            CUDA GPUs and in float32 on the CPU (torchao 0.18's int4 formats need CUDA, or C++ kernels its PyPI
            wheel does not load, or keep a byte a value)

`weight_memory` counts what the weights take once loaded. A process's peak RSS differs on the CPU: a float load
of a checkpoint in its own dtype maps the file and pages weights in as they are used, while a quantized load reads
every float weight, so the checkpoint's pages stay resident (clean, reclaimable) beside the quantized copy, plus
the conversion's transient float tensors.
"""

import math
from typing import TYPE_CHECKING, Any

from gve_tools.errors import GVEToolsError

if TYPE_CHECKING:  # torch is imported where it is used: the commands import this module for its names alone
    import torch

WEIGHT_SETTINGS = ("float", "int8", "int4")

# Module-name prefixes of GVEModel that no quantizer may convert (the vision tower, patch embedding and merger).
UNQUANTIZED_MODULES = ("model.visual",)

# torchao releases change the config API; this is the oldest one checked here (its int8 config, on the CPU).
TORCHAO_MIN_VERSION = "0.18.0"
# `.to(device)` of an 8-bit model needs 0.48 (transformers' check); older ones load but cannot move.
BITSANDBYTES_MIN_VERSION = "0.48.0"

BACKENDS = {
    ("int8", "cuda"): "bitsandbytes LLM.int8",
    ("int8", "cpu"): "torchao Int8WeightOnlyConfig (per row)",
    ("int4", "cuda"): "bitsandbytes NF4 (block 64, double-quantized)",
    ("int4", "cpu"): "bitsandbytes NF4 (block 64, double-quantized)",
}

BNB_4BIT_BLOCK = 64  # weights per NF4 absmax (bitsandbytes' default block size)
BNB_NESTED_BLOCK = 256  # 8-bit absmaxes per float32 scale with double quantization


class WeightSettingError(GVEToolsError, ValueError):
    """A weight setting that is unknown, or that has no backend on this device or in this environment."""


def check_setting(setting: str) -> str:
    """`setting` if it is one of WEIGHT_SETTINGS, else a `WeightSettingError` listing them."""
    if setting not in WEIGHT_SETTINGS:
        raise WeightSettingError(f"weights must be one of {', '.join(WEIGHT_SETTINGS)}, got {setting!r}")
    return setting


def _device_type(device: str) -> str:
    import torch

    try:
        return torch.device(device).type
    except RuntimeError as error:
        raise WeightSettingError(f"unknown device {device!r}") from error


def quantization_config(setting: str, device: str = "cpu") -> Any | None:
    """The transformers quantization config that loads `setting` weights on `device`; None for float.

    Raises `WeightSettingError` for an unknown setting, a device with no backend for it, or a missing backend
    package (naming what to install).
    """
    if check_setting(setting) == "float":
        return None
    kind = _device_type(device)
    skip = list(UNQUANTIZED_MODULES)
    if kind == "cuda" or (kind == "cpu" and setting == "int4"):
        return _bitsandbytes_config(setting, kind, skip)
    if kind == "cpu":
        from transformers import TorchAoConfig
        from transformers.utils import is_torchao_available

        if not is_torchao_available(TORCHAO_MIN_VERSION):
            raise WeightSettingError(
                f"{setting} weights on the CPU need torchao: pip install 'torchao>={TORCHAO_MIN_VERSION}'"
            )
        from torchao.quantization import Int8WeightOnlyConfig, PerRow

        return TorchAoConfig(Int8WeightOnlyConfig(granularity=PerRow()), modules_to_not_convert=skip)
    raise WeightSettingError(
        f"{setting} weights on {device!r}: no backend (bitsandbytes runs on CUDA GPUs and CPUs, torchao int8 on CPUs)"
    )


def _bitsandbytes_config(setting: str, kind: str, skip: list[str]) -> Any:
    """bitsandbytes' config: LLM.int8, or NF4 computing in bf16 on a GPU and in float32 on a CPU (where bf16
    matrix products are slow without AMX)."""
    import torch
    from transformers import BitsAndBytesConfig
    from transformers.utils import is_bitsandbytes_available

    if not is_bitsandbytes_available(BITSANDBYTES_MIN_VERSION):
        where = "a CUDA GPU" if kind == "cuda" else "the CPU"
        raise WeightSettingError(
            f"{setting} weights on {where} need bitsandbytes: pip install 'bitsandbytes>={BITSANDBYTES_MIN_VERSION}'"
        )
    if setting == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if kind == "cuda" else torch.float32,
        llm_int8_skip_modules=skip,
    )


# The released backbones' shapes (Qwen2.5-VL-3B and -7B, which GVE keeps); tests/test_quantization.py checks them
# against the published parameter counts and GVE-7B against the root config.json.
_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "in_channels": 3,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
BACKBONES = {
    "GVE-3B": {"hidden": 2048, "intermediate": 11008, "layers": 36, "heads": 16, "kv_heads": 2, "vocab": 151936},
    "GVE-7B": {"hidden": 3584, "intermediate": 18944, "layers": 28, "heads": 28, "kv_heads": 4, "vocab": 152064},
}
TIED_EMBEDDINGS = {"GVE-3B": True, "GVE-7B": False}


def backbone_config(name: str) -> Any:
    """A GVEConfig with the shapes of `name` (a key of BACKBONES), for counting parameters on the meta device."""
    from gve_tools.repo import remote_class

    shape = BACKBONES[name]
    return remote_class("configuration_gve.GVEConfig")(
        text_config={
            "hidden_size": shape["hidden"],
            "intermediate_size": shape["intermediate"],
            "num_hidden_layers": shape["layers"],
            "num_attention_heads": shape["heads"],
            "num_key_value_heads": shape["kv_heads"],
            "vocab_size": shape["vocab"],
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        },
        vision_config={**_VISION, "out_hidden_size": shape["hidden"]},
        tie_word_embeddings=TIED_EMBEDDINGS[name],
    )


def _quantized_bytes(setting: str, device: str, out_features: int, in_features: int) -> int:
    """Bytes of one quantized Linear weight (its bias stays in the load dtype), as each backend stores it."""
    count = out_features * in_features
    if (setting, device) == ("int8", "cuda"):  # int8 CB + float32 SCB per output row
        return count + 4 * out_features
    if (setting, device) == ("int8", "cpu"):  # int8 qdata + float32 scale + int8 zero point per output row
        return count + 5 * out_features
    # NF4: two values a byte, an 8-bit absmax per block of 64, a float32 scale per 256 absmaxes
    blocks = math.ceil(count / BNB_4BIT_BLOCK)
    return math.ceil(count / 2) + blocks + 4 * math.ceil(blocks / BNB_NESTED_BLOCK)


def parameter_groups(model: "torch.nn.Module") -> dict[str, Any]:
    """A GVEModel's parameters by group, as the quantizers see them.

    `vision_tower` (never quantized), `linear_weights` (the language model's Linear weights, the only ones
    quantized; also listed as `linear_shapes`, (out, in) each), `embeddings` (the token embeddings) and
    `norms_and_biases` (the rest of the language model). Tied parameters count once.
    """
    import torch
    from transformers.quantizers.quantizers_utils import should_convert_module

    quantized = {
        f"{name}.weight": module.weight.shape
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and should_convert_module(name, list(UNQUANTIZED_MODULES))
    }
    embeddings = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.Embedding)}
    groups = {"vision_tower": 0, "linear_weights": 0, "embeddings": 0, "norms_and_biases": 0}
    for name, param in model.named_parameters():
        if not should_convert_module(name, list(UNQUANTIZED_MODULES)):
            groups["vision_tower"] += param.numel()
        elif name in quantized:
            groups["linear_weights"] += param.numel()
        elif name in embeddings:
            groups["embeddings"] += param.numel()
        else:
            groups["norms_and_biases"] += param.numel()
    return {**groups, "total": sum(groups.values()), "linear_shapes": [tuple(shape) for shape in quantized.values()]}


def weight_memory(config: Any, dtype: "torch.dtype | None" = None) -> dict[str, Any]:
    """Bytes of a GVEModel's weights under each weight setting and backend, counted on the meta device.

    Unquantized parameters take `dtype`'s size (default bfloat16); each quantized Linear weight takes what its
    backend stores (see `_quantized_bytes`). Not counted: activations, the KV cache, the processor, and the
    backends' few constant bytes per layer (bitsandbytes' NF4 code books, under 1.1 KB a layer). Returns a dict
    a results file can hold: `parameters` (`parameter_groups` without the shapes) and `weights`, one entry per
    (setting, device) with its `backend`, `bytes` and `gib`.
    """
    import torch

    from gve_tools.repo import remote_class

    dtype = dtype or torch.bfloat16
    with torch.device("meta"):
        model = remote_class("modeling_gve.GVEModel")(config)
    groups = parameter_groups(model)
    shapes = groups.pop("linear_shapes")
    size = torch.empty((), dtype=dtype).element_size()
    kept = (groups["total"] - groups["linear_weights"]) * size
    rows = {"float": {"backend": f"none ({dtype})".replace("torch.", ""), "bytes": groups["total"] * size}}
    for (setting, device), backend in BACKENDS.items():
        linear = sum(
            _quantized_bytes(setting, device, out_features, in_features) for out_features, in_features in shapes
        )
        rows[f"{setting}/{device}"] = {"backend": backend, "bytes": kept + linear}
    for row in rows.values():
        row["gib"] = round(row["bytes"] / 2**30, 3)
    return {"parameters": groups, "quantized_linear_layers": len(shapes), "weights": rows}


def backbone_memory(dtype: "torch.dtype | None" = None) -> dict[str, dict[str, Any]]:
    """`weight_memory` of every backbone in BACKBONES, by name."""
    return {name: weight_memory(backbone_config(name), dtype) for name in BACKBONES}
