"""A corpus manifest (the format is in the package docstring): reading it with Ray Data, checking every row, and
the digest that ties a finished shard to the manifest rows it holds."""

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gve_tools.corpus.cluster import root_message
from gve_tools.errors import GVEToolsError

CONTENT_FIELDS = ("text", "image", "video")
TIME_RANGE = ("video_start", "video_end")  # processing_gve.TIME_RANGE: a part of the row's video, in seconds
MANIFEST_FIELDS = ("id", *CONTENT_FIELDS, "instruction", *TIME_RANGE)
URL_PREFIXES = ("http://", "https://")


class ManifestError(GVEToolsError, ValueError):
    """The manifest cannot be used; the message names the rows and fields at fault."""


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL or Parquet manifest with Ray Data, in file order, and validate it.

    Returns one dict a row with the keys of `MANIFEST_FIELDS` (missing ones None), `id` as a string
    and relative media paths resolved against the manifest's folder. Ray must be initialised.

    Raises:
        ManifestError: listing every problem found (up to 20), by row number (1-based) and field.
    """
    import pyarrow as pa
    import ray

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    parquet = path.suffix.lower() == ".parquet"
    context = ray.data.DataContext.get_current()
    preserve = context.execution_options.preserve_order
    context.execution_options.preserve_order = True  # row numbers are file order
    try:
        if parquet:
            dataset = ray.data.read_parquet(str(path), override_num_blocks=1)
        else:
            dataset = ray.data.read_json(str(path), lines=True, file_extensions=None, override_num_blocks=1)
        table = pa.concat_tables(ray.get(dataset.to_arrow_refs())) if dataset.count() else pa.table({})
    except Exception as error:  # pyarrow's parse errors, wrapped by Ray
        raise ManifestError(f"{path}: could not read the manifest: {root_message(error)}") from error
    finally:
        context.execution_options.preserve_order = preserve
    return validate_manifest(table.to_pylist(), source=str(path), base=path.parent)


def validate_manifest(rows: Sequence[dict[str, Any]], source: str = "manifest", base: Path | None = None) -> list:
    """Check manifest rows (see `read_manifest`) and return them normalised."""
    problems: list[str] = []
    unknown = sorted({key for row in rows for key in row} - set(MANIFEST_FIELDS))
    if unknown:
        problems.append(f"unknown column(s) {unknown}; a manifest has only {list(MANIFEST_FIELDS)}")
    seen: dict[str, int] = {}
    out = []
    for number, row in enumerate(rows, start=1):
        item = {key: row.get(key) for key in MANIFEST_FIELDS}
        ident = item["id"]
        if ident is None or (isinstance(ident, str) and not ident.strip()):
            problems.append(f"row {number}: field 'id' is missing or empty")
        elif isinstance(ident, bool) or not isinstance(ident, (str, int)):
            problems.append(f"row {number}: field 'id' must be a string or an integer, got {type(ident).__name__}")
        else:
            item["id"] = str(ident)
            if item["id"] in seen:
                problems.append(f"row {number}: duplicate id {item['id']!r} (first at row {seen[item['id']]})")
            else:
                seen[item["id"]] = number
        for key in ("text", "image", "video", "instruction"):
            value = item[key]
            if value is not None and not isinstance(value, str):
                problems.append(f"row {number}: field {key!r} must be a string, got {type(value).__name__}")
                item[key] = None
        if item["text"] is not None and not item["text"].strip():
            item["text"] = None
        for key in ("image", "video"):
            if item[key] is not None and not item[key].strip():
                problems.append(f"row {number}: field {key!r} is an empty string; give a path or URL, or leave it out")
            elif item[key] is not None and base is not None:
                item[key] = _resolve(item[key], base)
        if not any(item[key] for key in CONTENT_FIELDS):
            problems.append(f"row {number}: no content; give at least one of 'text', 'image', 'video'")
        elif problem := _time_range_problem(item):
            problems.append(f"row {number}: field {problem[1]!r}: {problem[0]}")
        out.append(item)
    if not rows:
        problems.append("the manifest has no rows")
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ManifestError(f"{source}: {len(problems)} problem(s):\n  {shown}")
    return out


def _time_range_problem(item: dict[str, Any]) -> tuple[str, str] | None:
    """The remote code's own check of a row's time range (values, a video to cut, order), before any embedding;
    where the range meets the video is checked when it is read. A row without a range has nothing to check."""
    if all(item[key] is None for key in TIME_RANGE):
        return None
    content = {key: item[key] for key in (*CONTENT_FIELDS, *TIME_RANGE) if item[key] is not None}
    return _remote_time_range_check()(content)


@functools.cache
def _remote_time_range_check() -> Callable[[dict], tuple[str, str] | None]:
    """`processing_gve.time_range_problem`, looked up once: transformers re-checks the remote files at each lookup."""
    from gve_tools.repo import remote_module

    return remote_module("processing_gve").time_range_problem


def _resolve(source: str, base: Path) -> str:
    """A relative local path made absolute against the manifest's folder; URLs and absolute paths as they are."""
    if source.startswith(URL_PREFIXES) or source.startswith("data:"):
        return source
    local = source[len("file://") :] if source.startswith("file://") else source
    return local if os.path.isabs(local) else str((base / local).resolve())


def shard_digest(rows: Sequence[dict[str, Any]]) -> str:
    """A digest of a shard's rows (ids and content), to tell whether the manifest changed under it.

    A row without a time range digests as it did before ranges existed, so earlier outputs still resume."""
    digest = hashlib.sha256()
    for row in rows:
        fields = MANIFEST_FIELDS if any(row.get(key) is not None for key in TIME_RANGE) else MANIFEST_FIELDS[:5]
        digest.update(json.dumps([row.get(key) for key in fields]).encode())
    return digest.hexdigest()[:32]
