"""The index of a video search: the videos of a folder, and their embeddings, cached on disk.

The cache of a folder's embeddings is one file per checkpoint and settings, `<cache>/videos-<key>.pt`, where the
key is `gve_tools.identity`'s: the checkpoint's contents (every file of a local folder but its Markdown ones, so
weights, configs, remote code, templates and tokenizer; a Hub model's snapshot commit), the dtype, the device type
and the config's embedding settings. In it each video is keyed by its path, size and modification time.
"""

import os
import sys
from pathlib import Path
from typing import Any

from gve_tools.identity import checkpoint_identity, digest, embedding_settings
from gve_tools.video_search.queries import SearchError, media_module

CACHE_VERSION = 2  # 2: the key is gve_tools.identity's (version 1 hashed only a folder's weights and JSON files)


def list_videos(folder: str | Path) -> list[Path]:
    """Every video file under `folder`, recursively, sorted by relative path; hidden files and folders are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SearchError(
            f"the video folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
        )
    extensions = media_module().VIDEO_EXTENSIONS
    videos = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in extensions
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    if not videos:
        raise SearchError(f"no video files in {folder} (looked for {', '.join(sorted(extensions))}, recursively)")
    return sorted(videos, key=lambda path: path.relative_to(folder).as_posix())


def cache_identity(model, model_id: str, revision: str | None) -> dict[str, Any]:
    """What identifies the embeddings `model` (loaded from `model_id` at `revision`) makes: the cache's key.

    The checkpoint's contents (not where they are: a moved folder keeps its cache), the dtype, the device type and
    the config's embedding settings; `checkpoint` says where the checkpoint is, for whoever reads the cache.
    """
    checkpoint = checkpoint_identity(model_id, revision)
    settings = embedding_settings(model.config, str(model.dtype).removeprefix("torch."), model.device.type)
    return {"version": CACHE_VERSION, "content": checkpoint["content"], "settings": settings, "checkpoint": checkpoint}


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def index_videos(model, videos: list[Path], cache_dir: Path, identity: dict[str, Any], batch_size: int = 8):
    """Embed `videos` as documents, reusing and extending the on-disk cache of `identity` (see `cache_identity`).

    Returns (embeddings of the videos that could be embedded, their positions in `videos`, the
    failures as {position: reason}, how many were embedded now).
    """
    import torch

    key = digest({name: value for name, value in identity.items() if name != "checkpoint"})[:20]
    cache_file = cache_dir / f"videos-{key}.pt"
    cached: dict[str, torch.Tensor] = {}
    if cache_file.is_file():
        try:
            cached = torch.load(cache_file, weights_only=True)["embeddings"]
        except Exception as error:  # an unreadable cache is rebuilt, never fatal
            print(f"ignoring the unreadable cache {cache_file}: {error}", file=sys.stderr)
    keys = [_file_key(path) for path in videos]
    missing = [i for i, k in enumerate(keys) if k not in cached]
    print(f"indexing {len(videos)} videos: {len(videos) - len(missing)} from the cache, {len(missing)} to embed")
    errors: dict[int, str] = {}
    if missing:
        stream = model.encode_stream(
            [str(videos[i]) for i in missing], batch_size=batch_size, show_progress_bar=True, on_error="skip"
        )
        for position, output in stream:  # position: in `missing`
            if isinstance(output, Exception):
                errors[missing[position]] = getattr(output, "reason", str(output))
            else:
                cached[keys[missing[position]]] = output.clone()  # not a view that would save its whole batch
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".tmp")
        torch.save({"identity": identity, "embeddings": cached}, partial)
        os.replace(partial, cache_file)
    positions = [i for i, k in enumerate(keys) if k in cached]
    embeddings = torch.stack([cached[keys[i]] for i in positions]) if positions else None
    return embeddings, positions, errors, len(missing) - len(errors)
