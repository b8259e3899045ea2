"""What a run's embeddings depend on (`run_settings`), and the output folder's record of it, `settings.json`, which
every later run into the folder must match (`check_settings`); `check_segments` checks the segment settings."""

import json
import math
from pathlib import Path
from typing import Any

from gve_tools.corpus.shards import OutputMismatch, write_atomic
from gve_tools.identity import video_reader

DEFAULT_SHARD_SIZE = 1000
# The config's settings that change an embedding, recorded with each run.
EMBEDDING_SETTINGS = (
    "pooling_token_id",
    "default_instruction",
    "max_length",
    "video_fps",
    "video_max_frames",
    "video_min_pixels",
    "video_max_pixels",
    "video_total_pixels",
    "image_min_pixels",
    "image_max_pixels",
)


def resolve_revision(checkpoint: str, revision: str | None = None) -> str | None:
    """The commit hash of a Hub checkpoint (from the local Hub cache, or the Hub); None for a local folder."""
    if Path(checkpoint).is_dir():
        return None
    from huggingface_hub import hf_hub_download

    config = Path(hf_hub_download(checkpoint, "config.json", revision=revision))
    return config.parent.name if config.parent.parent.name == "snapshots" else revision


def check_segments(seconds: float | None, stride: float | None) -> None:
    """Refuse segment settings that cannot cut a video: `seconds` (the window) and `stride` are finite numbers of
    seconds above 0, the stride at most the window (a longer one skips parts), and a stride needs a window.

    Raises:
        ValueError: naming the setting at fault.
    """
    for name, value in (("segment_seconds", seconds), ("segment_stride", stride)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
        ):
            raise ValueError(f"{name} must be a finite number of seconds above 0, got {value!r}")
    if stride is not None and seconds is None:
        raise ValueError("segment_stride needs segment_seconds (the segments' length)")
    if stride is not None and stride > seconds:
        raise ValueError(f"segment_stride ({stride:g} s) must be at most segment_seconds ({seconds:g} s)")


def run_settings(
    checkpoint: str,
    revision: str | None = None,
    *,
    dtype: str = "float32",
    float16: bool = False,
    instruction: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    segment_seconds: float | None = None,
    segment_stride: float | None = None,
) -> dict[str, Any]:
    """Everything that determines the output's embeddings; the embedding settings come from the checkpoint's config.

    Runs into the same folder must agree on all of it, the video reader included (`gve_tools.identity.video_reader`:
    the driver's; the Ray workers are told to use it, `stages.use_video_reader`). Speed settings (concurrency,
    batch size, device) are left out: they do not change the embeddings beyond rounding. With `segment_seconds`,
    the settings hold `segments`: `{"seconds": window, "stride": stride}` (stride None: `encode_segments`' default,
    which the checkpoint's remote code sets). A run without segments has no `segments` key, so folders written
    before segments existed still resume.
    """
    from transformers import AutoConfig

    check_segments(segment_seconds, segment_stride)
    commit = resolve_revision(checkpoint, revision)
    config = AutoConfig.from_pretrained(checkpoint, trust_remote_code=True, revision=commit or revision)
    settings = {
        "checkpoint": str(Path(checkpoint).resolve()) if Path(checkpoint).is_dir() else checkpoint,
        "revision": commit,
        "dtype": dtype,
        "embedding_dtype": "float16" if float16 else "float32",
        "dimension": config.text_config.hidden_size,
        "instruction": instruction,
        "embedding_settings": {key: getattr(config, key) for key in EMBEDDING_SETTINGS},
        "video_reader": video_reader(),
        "shard_size": shard_size,
    }
    if segment_seconds is not None:
        settings["segments"] = {
            "seconds": float(segment_seconds),
            "stride": None if segment_stride is None else float(segment_stride),
        }
    return settings


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse an output folder made with other settings; record them in a new one."""
    path = out / "settings.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
        if changed:
            lines = "\n  ".join(f"{key}: {old.get(key)!r} in the folder, {settings.get(key)!r} now" for key in changed)
            raise OutputMismatch(
                f"{out} holds embeddings made with other settings; refusing to mix them:\n  {lines}\n"
                "Use another --out folder, or the folder's settings"
                + (" (segments: --segment-seconds and --segment-stride)." if "segments" in changed else ".")
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(settings, indent=2) + "\n").encode())
