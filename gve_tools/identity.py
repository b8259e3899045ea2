"""What identifies a checkpoint's embeddings, for every cache of the tooling.

An embedding depends on the checkpoint's weights, configs, remote code, templates and tokenizer, and on the
settings it is computed with (dtype, device type, the config's embedding settings, the video reader). A cache keyed by
`cache_key(checkpoint_identity(...), settings)` is invalidated by a change of any of them: an edit of
`processing_gve.py` in a checkpoint folder changes its identity.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from gve_tools.errors import GVEToolsError


class IdentityError(GVEToolsError):
    """A Hub checkpoint that is not in the local Hub cache, so that nothing identifies its contents."""


def checkpoint_identity(model_id: str, revision: str | None = None) -> dict[str, str]:
    """{"model", "folder", "content"}: where the checkpoint's files are and what identifies their contents.

    A local folder is identified by `folder_digest` ("stat:<sha256>"), a Hub model by the commit of its snapshot in
    the Hub cache ("commit:<sha>").
    """
    if Path(model_id).is_dir():
        folder = Path(model_id).resolve()
        return {"model": model_id, "folder": str(folder), "content": "stat:" + folder_digest(folder)}
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if isinstance(config, str):
        snapshot = Path(config).parent
        return {"model": model_id, "folder": str(snapshot), "content": "commit:" + snapshot.name}
    raise IdentityError(f"cannot find {model_id!r} (revision {revision}) in the Hub cache to identify its embeddings")


def folder_digest(folder: Path) -> str:
    """A hash of the names, sizes and modification times of every file of a folder but its Markdown and hidden files:
    weights, configs, remote code, templates and tokenizer all take part (a card does not change an embedding)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.suffix == ".md" or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{relative.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def embedding_settings(config: Any, dtype: str, device: str, weights: str = "float") -> dict[str, Any]:
    """What besides the checkpoint and the input changes an embedding: dtype, device type, the config's settings,
    the video reader with its version (`video_reader`), and quantized weights (`gve_tools.quantization`; absent for
    float weights, so older keys stay valid)."""
    settings = {
        "dtype": dtype,
        "device": device.split(":")[0],
        "max_length": config.max_length,
        "video": config.video_options(),
        "image": config.image_options(),
        "pooling_token_id": config.pooling_token_id,
        "video_reader": video_reader(),
    }
    if weights != "float":
        settings["weights"] = weights
    return settings


def video_reader() -> dict[str, str]:
    """The video reader the remote code decodes with here, and its version (`processing_gve.video_reader_identity`):
    torchcodec and decord give different frames on 10-bit and variable-frame-rate videos, so a change of reader
    must not reuse embeddings made with the other."""
    from gve_tools.repo import remote_module

    return remote_module("processing_gve").video_reader_identity()


def digest(value: Any) -> str:
    """The sha256 of a JSON value (keys sorted): the key of a cache entry or a cache folder."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
