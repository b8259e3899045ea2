"""Loading a GVE checkpoint for the tooling: the one loader every command uses (the remote code does the rest)."""

from pathlib import Path
from typing import Any

from gve_tools.errors import GVEToolsError
from gve_tools.repo import BUNDLED_MODEL, ROOT
from gve_tools.text import first_line

DTYPES = ("float32", "bfloat16", "float16")


class ModelLoadError(GVEToolsError):
    """A checkpoint that cannot be found or loaded, or is not a GVE checkpoint."""


def resolve_model(model: str | Path | None) -> str:
    """A --model argument as from_pretrained takes it: an existing folder, or a Hub id; None is the bundled model."""
    if model is None:
        if not BUNDLED_MODEL.is_dir():
            raise ModelLoadError(
                f"the bundled tiny model {BUNDLED_MODEL.relative_to(ROOT)} is missing from this checkout; "
                "pass --model PATH_OR_HUB_ID (e.g. Alibaba-NLP/GVE-3B)"
            )
        return str(BUNDLED_MODEL)
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise ModelLoadError(f"--model {text!r}: no such checkpoint folder (a Hub id looks like 'owner/name')")
    return text


def torch_dtype(name: str, device: str = "cpu") -> Any:
    """The torch dtype called `name` (one of DTYPES); "auto" is bfloat16 on a GPU and float32 elsewhere."""
    import torch

    if name == "auto":
        name = "bfloat16" if device.startswith("cuda") else "float32"
    if name not in DTYPES:
        raise ModelLoadError(f"dtype must be one of {', '.join(DTYPES)} or auto, got {name!r}")
    return getattr(torch, name)


def load_model(
    model_id: str, *, revision: str | None = None, device: str = "cpu", dtype: str = "auto", weights: str = "float"
) -> Any:
    """A GVE checkpoint (a folder or a Hub id) on `device` in eval mode, in `dtype` (see `torch_dtype`).

    `weights` is a setting of `gve_tools.quantization.WEIGHT_SETTINGS`: "float" loads every weight in `dtype`;
    "int8" and "int4" quantize the language model's Linear weights while loading (the vision tower stays in
    `dtype`). A quantized model is placed by `device_map` (bitsandbytes quantizes as it places the weights).

    Raises `ModelLoadError` naming the checkpoint when it cannot be loaded (not found, not in the cache while
    offline, no access, no quantization backend) or is not a GVE checkpoint.
    """
    from transformers import AutoModel

    from gve_tools.quantization import WeightSettingError, quantization_config

    try:
        quantization = quantization_config(weights, device)
    except WeightSettingError as error:
        raise ModelLoadError(f"cannot load the model {model_id!r}: {error}") from error
    quantized = {} if quantization is None else {"quantization_config": quantization, "device_map": {"": device}}
    failures = (OSError, ValueError) if quantization is None else (OSError, ValueError, ImportError, RuntimeError)
    try:
        model = AutoModel.from_pretrained(
            model_id, trust_remote_code=True, revision=revision, dtype=torch_dtype(dtype, device), **quantized
        )
    except failures as error:
        raise ModelLoadError(f"cannot load the model {model_id!r}: {first_line(error)}") from error
    if not hasattr(model, "encode"):
        raise ModelLoadError(f"{model_id} is not a GVE checkpoint (its model class has no encode)")
    return (model if quantized else model.to(device)).eval()
