"""Helpers shared by the scripts and the tests (never pushed to the Hub)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The remote code that a GVE checkpoint folder carries, loaded by `trust_remote_code=True`.
REMOTE_CODE_FILES = ("configuration_gve.py", "modeling_gve.py", "processing_gve.py")

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


def remote_class(reference: str, folder: str | Path = ROOT) -> type:
    """Import a class of the remote code (e.g. ``"processing_gve.GVEProcessor"``) from `folder`.

    The remote files import each other relatively, as transformers loads them, so they are imported
    through transformers' dynamic-module machinery rather than as top-level modules.
    """
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    return get_class_from_dynamic_module(reference, str(folder))


# The files that make a GVE folder a sentence-transformers model (module 0 is remote code).
SENTENCE_TRANSFORMERS_FILES = (
    "sentence_transformers_gve.py",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


def write_sentence_transformers_files(folder: str | Path, dimension: int) -> None:
    """Write the sentence-transformers files of a GVE folder whose embeddings have `dimension` values.

    `SentenceTransformer(folder, trust_remote_code=True)` then builds GVETransformer (GVE's
    preprocessing and backbone), a `lasttoken` Pooling and a Normalize. The tests check that these
    files are exactly what sentence-transformers itself saves for that model.
    """
    import json
    import shutil

    from configuration_gve import QUERY_INSTRUCTION

    folder = Path(folder)
    if folder.resolve() != ROOT:
        shutil.copy2(ROOT / "sentence_transformers_gve.py", folder / "sentence_transformers_gve.py")
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
            "prompts": {"query": QUERY_INSTRUCTION, "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "embedding_dimension": dimension,
            "pooling_mode": "lasttoken",
            "include_prompt": True,
        },
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")


EMBEDDING_CHAT_TEMPLATE_FILE = "additional_chat_templates/embedding.jinja"


def write_embedding_chat_template(folder: str | Path) -> Path:
    """Write GVE's embedding chat template (the one vLLM needs) into a folder, e.g. the repo root.

    Built checkpoints get it from `GVEProcessor.save_pretrained`, which saves the processor's named templates.
    """
    path = Path(folder) / EMBEDDING_CHAT_TEMPLATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(remote_class("processing_gve.GVEProcessor").embedding_chat_template)
    return path


def docstring_parser(doc: str, prog: str | None = None, epilog: str = "") -> argparse.ArgumentParser:
    """An argument parser whose help is a script's docstring: its text, then its `    python ...` examples.

    `epilog` (exit statuses, notes) follows the examples.
    """
    description, examples = doc.split("\n\n    python", 1)
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n    python" + examples.rstrip() + (f"\n\n{epilog}" if epilog else ""),
    )
