"""The repository and the files of a GVE folder: where things are, how the tooling reaches the remote code, and the
files besides the weights that every GVE folder carries (and the writers of the generated ones)."""

import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the repository (the package is installed editable, `pip install -e .`)
BUNDLED_MODEL = ROOT / "bundled" / "gve-tiny-synthetic"
BUNDLED_SAMPLES = ROOT / "bundled" / "samples"

# The remote code that a GVE checkpoint folder carries, loaded by `trust_remote_code=True`.
REMOTE_CODE_FILES = ("configuration_gve.py", "modeling_gve.py", "processing_gve.py")

# The files copied from this repository's root into every GVE folder (the rest of a folder is built or generated).
CODE_FILES = (*REMOTE_CODE_FILES, "sentence_transformers_gve.py", "handler.py", "requirements.txt")


def copy_code_files(folder: str | Path) -> None:
    """Copy the repository's `CODE_FILES` into a GVE folder (a checkpoint carries its own copy of the code)."""
    for name in CODE_FILES:
        shutil.copy2(ROOT / name, Path(folder) / name)


# Every file a complete GVE folder has, besides its weights (model.safetensors, or shards and their index).
REQUIRED_FILES = (
    "config.json",
    *REMOTE_CODE_FILES,
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "additional_chat_templates/embedding.jinja",
    "sentence_transformers_gve.py",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "handler.py",
    "requirements.txt",
    "README.md",
)

# What push_to_hub uploads: the required files, the weights, and the few optional files a base may bring.
HUB_ALLOW_PATTERNS = (
    *REQUIRED_FILES,
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
    "additional_chat_templates/*.jinja",
)


def remote_class(reference: str, folder: str | Path = ROOT) -> Any:
    """A class (or any name) of the remote code, e.g. ``"processing_gve.GVEProcessor"``, from `folder`.

    The one way the tooling reaches the remote code. The remote files import each other relatively, as
    transformers loads them, so they are imported through transformers' dynamic-module machinery rather than
    as top-level modules.
    """
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    return get_class_from_dynamic_module(reference, str(folder))


def remote_module(name: str, folder: str | Path = ROOT) -> ModuleType:
    """A module of the remote code (e.g. ``"configuration_gve"``) from `folder`, as transformers imports it."""
    anchor = {"configuration_gve": "GVEConfig", "modeling_gve": "GVEModel", "processing_gve": "GVEProcessor"}[name]
    return sys.modules[remote_class(f"{name}.{anchor}", folder).__module__]


# The files that make a GVE folder a sentence-transformers model (module 0 is remote code).
SENTENCE_TRANSFORMERS_FILES = (
    "sentence_transformers_gve.py",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


def sentence_transformers_files(dimension: int) -> dict[str, str]:
    """The sentence-transformers files of a GVE folder whose embeddings have `dimension` values, as {name: text}.

    `SentenceTransformer(folder, trust_remote_code=True)` then builds GVETransformer (GVE's preprocessing and
    backbone, `sentence_transformers_gve.py`), a `lasttoken` Pooling and a Normalize. The tests check that these
    files are exactly what sentence-transformers itself saves for that model.
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers_gve.GVETransformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.base.modules.normalize.Normalize",
        },
    ]
    output = {"method": "forward", "method_output_name": "last_hidden_state"}
    files = {
        "modules.json": modules,
        "sentence_bert_config.json": {
            "transformer_task": "feature-extraction",
            "modality_config": {modality: output for modality in ("text", "image", "video", "message")},
            "module_output_name": "token_embeddings",
            "unpad_inputs": False,
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": query_instruction(), "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "embedding_dimension": dimension,
            "pooling_mode": "lasttoken",
            "include_prompt": True,
        },
    }
    return {name: json.dumps(content, indent=2) + "\n" for name, content in files.items()}


def write_sentence_transformers_files(folder: str | Path, dimension: int) -> None:
    """Write the sentence-transformers configs (`sentence_transformers_files`) into a GVE folder; its module,
    `sentence_transformers_gve.py`, is one of the `CODE_FILES` (`copy_code_files`)."""
    folder = Path(folder)
    for name, text in sentence_transformers_files(dimension).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


EMBEDDING_CHAT_TEMPLATE_FILE = "additional_chat_templates/embedding.jinja"


def embedding_chat_template() -> str:
    """GVE's embedding chat template (the one vLLM needs), from the remote code's processor."""
    return remote_class("processing_gve.GVEProcessor").embedding_chat_template


def write_embedding_chat_template(folder: str | Path) -> Path:
    """Write GVE's embedding chat template into a folder, e.g. the repo root.

    Built checkpoints get it from `GVEProcessor.save_pretrained`, which saves the processor's named templates.
    """
    path = Path(folder) / EMBEDDING_CHAT_TEMPLATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(embedding_chat_template())
    return path


def query_instruction() -> str:
    """GVE's default query instruction (`configuration_gve.QUERY_INSTRUCTION`), read from the remote code."""
    return remote_module("configuration_gve").QUERY_INSTRUCTION
