"""The index of a video search: the videos of a folder, and their embeddings, cached on disk.

A video no longer than one window (`segment_window`: by default the span the checkpoint samples at its full rate,
`max_frames / fps`) is embedded whole, as a document. A longer one is indexed as its segments, consecutive time
windows (`model.encode_segments`, at the model's default stride unless one is given), each embedding with its
(start, end); with `segments=False` (`--no-segments`) every video is embedded whole.

The cache of a folder's embeddings is one file per checkpoint and settings, `<cache>/videos-<key>.pt`, where the
key is `gve_tools.identity`'s: the checkpoint's contents (every file of a local folder but its Markdown ones, so
weights, configs, remote code, templates and tokenizer; a Hub model's snapshot commit), the dtype, the device type
and the config's embedding settings. In it each video is keyed by its path, size and modification time: its whole
embedding under `embeddings`, its duration (as the remote code probes it) under `durations`, and its segments under
`segments`, keyed also by the window and stride asked for.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


def segment_window(model, window: float | None = None, stride: float | None = None) -> float:
    """The segments' window in seconds, as `encode_segments` chooses it: `window`, else the span the checkpoint
    samples at its full rate (the remote code's `segment_settings`, which also checks `window` and `stride`)."""
    processing = sys.modules[type(model.processor).__module__]
    return processing.segment_settings(window, stride, model.processor.embedding_config.video_options())[0]


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _duration(model, path: Path) -> float | None:
    """The video's duration in seconds as the model's remote code counts it (its `probe_video`); None if unreadable
    (the video is then embedded whole, and that says why it cannot be)."""
    processing = sys.modules[type(model.processor).__module__]
    try:
        return float(processing.probe_video(str(path), processing.MediaLimits.resolve(None)).duration)
    except Exception:
        return None


@dataclass
class VideoIndex:
    """The embedded videos of a folder: one embedding row per video indexed whole, one per segment of the others."""

    videos: list[Path]  # the videos that could be embedded, in the folder's order
    embeddings: Any  # [rows, D] tensor, L2-normalised
    rows: list[tuple[int, tuple[float, float] | None]]  # each row's video (position in `videos`) and range or None
    errors: dict[int, str]  # position in the listed videos -> why it could not be embedded
    embedded: int  # videos embedded in this run (the others came from the cache)
    window: float | None = None  # the window in seconds past which a video is segmented; None without segments

    def segments(self) -> dict[Path, list[tuple[float, float]]]:
        """The videos indexed as segments, with their segments' ranges."""
        spans: dict[Path, list[tuple[float, float]]] = {}
        for position, span in self.rows:
            if span is not None:
                spans.setdefault(self.videos[position], []).append(span)
        return spans


def index_videos(
    model,
    videos: list[Path],
    cache_dir: Path,
    identity: dict[str, Any],
    batch_size: int = 8,
    *,
    segments: bool = True,
    window: float | None = None,
    stride: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoIndex:
    """Embed `videos`, reusing and extending the on-disk cache of `identity` (see `cache_identity`).

    `progress(done, total)`, if given, is called as each video to embed is done (total: those not in the cache),
    for a progress bar other than the terminal's.

    With `segments`, a video longer than the window (`segment_window(model, window)`) is embedded as its segments
    (`model.encode_segments(video, window, stride)`; `stride` None is the model's default), the others whole, as
    documents; without, every video is embedded whole.
    """
    import torch

    key = digest({name: value for name, value in identity.items() if name != "checkpoint"})[:20]
    cache_file = cache_dir / f"videos-{key}.pt"
    cache: dict[str, dict] = {"embeddings": {}, "segments": {}, "durations": {}}
    if cache_file.is_file():
        try:
            stored = torch.load(cache_file, weights_only=True)
            cache.update({part: stored.get(part, {}) for part in cache})
        except Exception as error:  # an unreadable cache is rebuilt, never fatal
            print(f"ignoring the unreadable cache {cache_file}: {error}", file=sys.stderr)
    keys = [_file_key(path) for path in videos]
    changed = False
    long: set[int] = set()
    seconds = segment_window(model, window) if segments else None
    if segments:
        for i, file_key in enumerate(keys):
            if file_key not in cache["durations"]:
                duration = _duration(model, videos[i])
                if duration is None:
                    continue
                cache["durations"][file_key] = duration
                changed = True
            if cache["durations"][file_key] > seconds:
                long.add(i)
    shown = ["default" if value is None else f"{value:g}" for value in (window, stride)]
    segment_key = f"|segments window={shown[0]} stride={shown[1]}"
    entries = [keys[i] + segment_key if i in long else keys[i] for i in range(len(videos))]
    stored_in = [cache["segments"] if i in long else cache["embeddings"] for i in range(len(videos))]
    missing = [i for i in range(len(videos)) if entries[i] not in stored_in[i]]
    note = f" ({len(long)} longer than the {seconds:g} s window, as segments)" if long else ""
    print(f"indexing {len(videos)} videos: {len(videos) - len(missing)} from the cache, {len(missing)} to embed{note}")
    errors: dict[int, str] = {}
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(missing))

    whole = [i for i in missing if i not in long]
    if whole:
        stream = model.encode_stream(
            [str(videos[i]) for i in whole], batch_size=batch_size, show_progress_bar=True, on_error="skip"
        )
        for position, output in stream:  # position: in `whole`
            if isinstance(output, Exception):
                errors[whole[position]] = getattr(output, "reason", str(output))
            else:
                cache["embeddings"][entries[whole[position]]] = output.clone()  # not a view of its whole batch
            advance()
    for i in (i for i in missing if i in long):
        try:
            found = model.encode_segments(str(videos[i]), window, stride, batch_size=batch_size)
        except ValueError as error:  # GVEInputError: the video, or one of its windows, cannot be embedded
            errors[i] = getattr(error, "reason", str(error))
        else:
            cache["segments"][entries[i]] = {"spans": [list(s) for s in found.spans], "embeddings": found.embeddings}
        advance()
    if missing or changed:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".tmp")
        torch.save({"identity": identity, **cache}, partial)
        os.replace(partial, cache_file)
    indexed, rows, parts = [], [], []
    for i in range(len(videos)):
        if entries[i] not in stored_in[i]:
            continue
        if i in long:
            stored = stored_in[i][entries[i]]
            rows += [(len(indexed), (float(start), float(end))) for start, end in stored["spans"]]
            parts.append(stored["embeddings"])
        else:
            rows.append((len(indexed), None))
            parts.append(stored_in[i][entries[i]][None])
        indexed.append(videos[i])
    embeddings = torch.cat(parts) if parts else None
    return VideoIndex(indexed, embeddings, rows, errors, len(missing) - len(errors), seconds if segments else None)
