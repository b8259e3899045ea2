"""Clips that someone uploads to search (the Space's app, space/app.py): limits on their count, size and length, the
reason each refused file is refused, and the folder the accepted ones are indexed from.

A file is accepted when its name has a video extension (the remote code's list), it is at most `max_bytes` long,
the model's remote code can probe it as a video (its `probe_video`, under the library's media limits: frame size
and decoding work) and it lasts at most `max_seconds`. More than `max_files` files at once are refused together.
"""

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from gve_tools.video_search.queries import SearchError, media_module

# The environment variables that set each limit (the app's command-line options override them).
LIMIT_VARIABLES = {
    "max_files": "GVE_SPACE_MAX_UPLOADS",
    "max_bytes": "GVE_SPACE_MAX_UPLOAD_BYTES",
    "max_seconds": "GVE_SPACE_MAX_UPLOAD_SECONDS",
}


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold: at most `max_files` files, each at most `max_bytes` and `max_seconds` long."""

    max_files: int = 8
    max_bytes: int = 20_000_000
    max_seconds: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_files", "max_bytes", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise SearchError(f"upload limit {name} must be a positive number, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: float | None) -> "UploadLimits":
        """The limits: each from `overrides` when given (not None), else its environment variable
        (`LIMIT_VARIABLES`), else the default."""
        environ = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for name, variable in LIMIT_VARIABLES.items():
            kind = float if name == "max_seconds" else int
            if overrides.get(name) is not None:
                values[name] = kind(overrides[name])
            elif environ.get(variable):
                try:
                    values[name] = kind(environ[variable])
                except ValueError:
                    raise SearchError(f"{variable} must be a number, got {environ[variable]!r}") from None
        return cls(**values)

    def describe(self) -> str:
        """The limits in one line, as the page shows them."""
        each = f"each at most {self.max_bytes:,} bytes and {self.max_seconds:g} s long"
        return f"up to {self.max_files} videos at a time, {each}"


def refusal(model, path: Path, limits: UploadLimits) -> str | None:
    """Why the uploaded file `path` cannot be searched, or None when it can (see the module's docstring)."""
    extensions = media_module().VIDEO_EXTENSIONS
    if path.suffix.lower() not in extensions:
        return f"not a video file by its name (accepted: {', '.join(sorted(extensions))})"
    size = path.stat().st_size
    if size > limits.max_bytes:
        return f"{size:,} bytes, over the limit of {limits.max_bytes:,} bytes"
    processing = sys.modules[type(model.processor).__module__]
    try:
        probe = processing.probe_video(str(path), processing.MediaLimits.resolve(None))
        duration = float(probe.duration)
    except Exception as error:  # av, decord and the remote code's own checks: the file is not a video it can read
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)
        return f"not a readable video ({reason})"
    if duration > limits.max_seconds:
        return f"{duration:.1f} s long, over the limit of {limits.max_seconds:g} s"
    return None


def check_uploads(model, paths: list[Path], limits: UploadLimits) -> tuple[list[Path], dict[str, str]]:
    """The uploaded files that can be searched, and each refused one's name with the reason; more than
    `limits.max_files` files raise `SearchError` (none is taken)."""
    if len(paths) > limits.max_files:
        raise SearchError(f"{len(paths)} files uploaded: at most {limits.max_files} can be searched at a time")
    accepted, refused = [], {}
    for path in map(Path, paths):
        reason = refusal(model, path, limits)
        if reason is None:
            accepted.append(path)
        else:
            refused[path.name] = reason
    return accepted, refused


def store_uploads(paths: list[Path], folder: Path) -> Path:
    """Copy the accepted uploads into `folder`, emptied first, under their own names (made safe and distinct), for
    indexing; returns `folder`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for number, path in enumerate(paths):
        name = re.sub(r"[^\w.-]", "_", path.name).lstrip(".") or f"video{path.suffix}"
        target = folder / name
        if target.exists():
            target = folder / f"{target.stem}-{number}{target.suffix}"
        shutil.copyfile(path, target)
    return folder
