"""Helpers shared by the scripts and the tests (never pushed to the Hub)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The remote code that a GVE checkpoint folder carries, loaded by `trust_remote_code=True`.
REMOTE_CODE_FILES = ("configuration_gve.py", "modeling_gve.py", "processing_gve.py")


def remote_class(reference: str, folder: str | Path = ROOT) -> type:
    """Import a class of the remote code (e.g. ``"processing_gve.GVEProcessor"``) from `folder`.

    The remote files import each other relatively, as transformers loads them, so they are imported
    through transformers' dynamic-module machinery rather than as top-level modules.
    """
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    return get_class_from_dynamic_module(reference, str(folder))
