#!/usr/bin/env python
"""Embed a corpus with GVE on Ray Data, into resumable Parquet shards, and optionally a FAISS index.

The same command runs on one machine (Ray in local mode, started here) and on a Ray cluster
(`--address`). Ray, FAISS and pyarrow are the `scale` extra: `pip install ".[scale]"`.

Manifest: JSONL (one object a line) or Parquet, one row per item:

    {"id": "clip-0001", "video": "clips/0001.mp4", "text": "optional caption"}
    {"id": "img-7", "image": "https://example.org/7.jpg", "instruction": "optional system instruction"}

`id` is required and unique (a string or an integer; written as a string). Each row has at least
one of `text`, `image` and `video` (a path or an http(s) URL; relative paths are read from the
manifest's folder); together they make one composed input. `instruction` replaces the system
instruction for that row. Any other column is refused.

Pipeline (Ray Data): Ray Data reads the manifest, which is validated and cut into shards of
`--shard-size` rows in manifest order. CPU tasks read, decode and preprocess each item with the
checkpoint's processor (`GVEProcessor.load` + `featurize`, as the encode pipeline's own workers do);
`map_batches` actors (`--concurrency` of them, `--num-gpus` each) load the model once and run
`model.encode`, the package's batched path (length-sorted batches within `--max-batch-tokens`).
`--preprocess actor` instead leaves the decoding to `model.encode`'s worker threads inside each actor.

Output folder:

    settings.json                  checkpoint, revision and embedding settings of the run
    embeddings/part-00000.parquet  `id` + `embedding` (float32, or float16 with --float16), the
                                   settings in the file metadata (key b"gve"), manifest order
    errors/part-00000.jsonl        the shard's bad items (--on-error skip), {"id", "row", "error"}
    errors.jsonl                   all bad items, gathered at the end of every run
    index.faiss, index.json        with --index: FAISS index (inner product) and its id list

Resume: shard k always holds manifest rows [k * shard_size, (k + 1) * shard_size). A shard is
written to a hidden temporary file, flushed to disk and renamed, so a shard file is complete or
absent, even after a crash or a power cut. A re-run skips every finished shard (after checking its
rows' digest against the manifest) and writes no duplicate id; a run whose settings differ from the
folder's is refused, and so is a damaged shard (cut short or overwritten, e.g. by a disk fault or an
interrupted copy): the error names it; delete it and re-run to re-embed its rows. `--max-shards`
stops after that many new shards.

Bad items follow the encode pipeline's policy: `--on-error raise` (default) stops at the first item
that cannot be embedded, naming its id; `--on-error skip` leaves it out of the shards and lists it
in the errors files. No placeholder vector is ever written.

    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb --index
    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb \
        --address auto --concurrency 8 --num-gpus 1 --device cuda --dtype bfloat16 --on-error skip --index
    python scripts/search_index.py corpus-emb --text "a red square moving right" --k 5
"""

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FIELDS = ("id", "text", "image", "video", "instruction")
CONTENT_FIELDS = ("text", "image", "video")
URL_PREFIXES = ("http://", "https://")
DEFAULT_SHARD_SIZE = 1000
# At most this many vectors, the index is exact (IndexFlatIP); above it, IVF (IndexIVFFlat, inner product).
EXACT_INDEX_LIMIT = 100_000
METADATA_KEY = b"gve"
DECODE_TASK_MEMORY = 2**30  # bytes reserved per decoding task (torch and the processor take ~650 MiB)
RELEASE_TIMEOUT = 60.0  # seconds a run waits for an earlier run's actors to give their CPUs back
DTYPES = ("float32", "bfloat16", "float16")


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the rows and fields at fault."""


class OutputMismatch(ValueError):
    """The output folder holds embeddings made with other settings or from other manifest rows."""


class DamagedShard(OutputMismatch):
    """A finished shard that cannot be read (cut short, or overwritten); the message names it and the fix."""


class PlanError(ValueError):
    """The requested actors and tasks do not fit the Ray cluster's resources."""


class ItemError(ValueError):
    """An item that cannot be embedded (with `on_error="raise"`); the message names its id and row."""


# ------------------------------------------------------------------ manifest


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
        raise ManifestError(f"{path}: could not read the manifest: {_root_message(error)}") from error
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
        out.append(item)
    if not rows:
        problems.append("the manifest has no rows")
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ManifestError(f"{source}: {len(problems)} problem(s):\n  {shown}")
    return out


def _resolve(source: str, base: Path) -> str:
    """A relative local path made absolute against the manifest's folder; URLs and absolute paths as they are."""
    if source.startswith(URL_PREFIXES) or source.startswith("data:"):
        return source
    local = source[len("file://") :] if source.startswith("file://") else source
    return local if os.path.isabs(local) else str((base / local).resolve())


def shard_digest(rows: Sequence[dict[str, Any]]) -> str:
    """A digest of a shard's rows (ids and content), to tell whether the manifest changed under it."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row[key] for key in MANIFEST_FIELDS]).encode())
    return digest.hexdigest()[:32]


def _root_message(error: BaseException) -> str:
    """The innermost cause's message (Ray wraps user errors in several layers), on one line."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or getattr(error, "cause", None)
        if inner is None or inner is error:
            break
        error = inner
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def _find_item_error(error: BaseException) -> ItemError | None:
    """The ItemError a Ray failure carries, if any.

    Ray re-raises a task's exception wrapped, and the worker-side cause may not survive the trip
    back, so its message is also looked for in the wrapper's text (which carries the worker's traceback).
    """
    seen, current = set(), error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ItemError):
            return current
        current = current.__cause__ or getattr(current, "cause", None)
    found = re.findall(r"ItemError: (.+)", str(error))
    return ItemError(found[-1].strip()) if found else None


# ------------------------------------------------------------------ settings


def resolve_revision(checkpoint: str, revision: str | None = None) -> str | None:
    """The commit hash of a Hub checkpoint (from the local Hub cache, or the Hub); None for a local folder."""
    if Path(checkpoint).is_dir():
        return None
    from huggingface_hub import hf_hub_download

    config = Path(hf_hub_download(checkpoint, "config.json", revision=revision))
    return config.parent.name if config.parent.parent.name == "snapshots" else revision


def run_settings(
    checkpoint: str,
    revision: str | None = None,
    *,
    dtype: str = "float32",
    float16: bool = False,
    instruction: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> dict[str, Any]:
    """Everything that determines the output's embeddings; the embedding settings come from the checkpoint's config.

    Runs into the same folder must agree on all of it. Speed settings (concurrency, batch size,
    device) are left out: they do not change the embeddings beyond rounding.
    """
    from transformers import AutoConfig

    commit = resolve_revision(checkpoint, revision)
    config = AutoConfig.from_pretrained(checkpoint, trust_remote_code=True, revision=commit or revision)
    embedding = {
        key: getattr(config, key)
        for key in (
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
    }
    return {
        "checkpoint": str(Path(checkpoint).resolve()) if Path(checkpoint).is_dir() else checkpoint,
        "revision": commit,
        "dtype": dtype,
        "embedding_dtype": "float16" if float16 else "float32",
        "dimension": config.text_config.hidden_size,
        "instruction": instruction,
        "embedding_settings": embedding,
        "shard_size": shard_size,
    }


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse an output folder made with other settings; record them in a new one."""
    path = out / "settings.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(key for key in set(old) | set(settings) if old.get(key) != settings.get(key))
        if changed:
            lines = "\n  ".join(f"{key}: {old.get(key)!r} in the folder, {settings.get(key)!r} now" for key in changed)
            raise OutputMismatch(
                f"{out} holds embeddings made with other settings; refusing to mix them:\n  {lines}\n"
                "Use another --out folder, or the folder's settings."
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, (json.dumps(settings, indent=2) + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    _replace_durably(temporary, path)


def _replace_durably(temporary: Path, path: Path) -> None:
    """Rename a written temporary file to `path`, so that after a crash or a power cut `path` is the old
    file or the whole new one, never a name whose data did not reach the disk.

    The file's data is synced before the rename, and its folder (which records the rename) after.
    """
    with open(temporary, "r+b") as file:  # opened for writing: Windows syncs only writable handles
        os.fsync(file.fileno())
    os.replace(temporary, path)
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:  # a folder cannot be opened on Windows, whose renames need no folder sync
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# ------------------------------------------------------------------ Ray stages


_PROCESSORS: dict[tuple, Any] = {}  # per worker process: Ray reuses task workers, so each loads the processor once


def _processor(checkpoint: str, revision: str | None):
    key = (checkpoint, revision)
    if key not in _PROCESSORS:
        from transformers import AutoProcessor

        _PROCESSORS[key] = AutoProcessor.from_pretrained(checkpoint, trust_remote_code=True, revision=revision)
    return _PROCESSORS[key]


def _label(row: dict[str, Any]) -> str:
    return f"id {row['id']!r} (manifest row {row['row'] + 1})"


def _encode_input(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in (*CONTENT_FIELDS, "instruction") if row.get(key) is not None}


def preprocess(
    batch,
    checkpoint: str,
    revision: str | None,
    instruction: str | None,
    on_error: str,
) -> dict[str, Any]:
    """CPU task: read, decode and featurize items with the checkpoint's processor.

    Adds `features` (the pickled prompt and model inputs, plain numpy) and `error` (why the item
    cannot be embedded, with `on_error="skip"`). With `on_error="raise"` a bad item raises `ItemError`.
    """
    processor = _processor(checkpoint, revision)
    rows = _rows(batch)
    features, errors = [], []
    for row in rows:
        try:
            loaded = processor.load(_encode_input(row), instruction, label=_label(row))
            model_inputs = processor.featurize(loaded, release_media=True)
            payload = {"prompt": loaded.prompt, "max_length": loaded.features_max_length}
            payload["features"] = {key: _numpy(value) for key, value in model_inputs.items()}
            features.append(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
            errors.append(None)
        except ValueError as error:  # GVEInputError and bad controls, as in the encode pipeline
            if on_error == "raise":
                raise ItemError(str(error)) from None
            features.append(b"")
            errors.append(str(error))
    return _table(rows, features=(features, "binary"), error=(errors, "string"))


class Embedder:
    """`map_batches` actor: loads the model once, then embeds batches with `model.encode`."""

    def __init__(
        self,
        checkpoint: str,
        revision: str | None,
        device: str,
        dtype: str,
        instruction: str | None,
        on_error: str,
        batch_size: int,
        max_batch_tokens: int,
        num_workers: int | None,
    ):
        import torch
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(
            checkpoint, trust_remote_code=True, revision=revision, dtype=getattr(torch, dtype)
        )
        self.model.to(device).eval()
        self.processor = self.model.processor
        self.item_class = sys.modules[type(self.processor).__module__].GVEItem
        self.instruction, self.on_error = instruction, on_error
        self.options = {"batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "show_progress_bar": False}
        self.num_workers = num_workers

    def __call__(self, batch):
        rows = _rows(batch)
        if "features" in batch.column_names:  # preprocessed by the CPU tasks
            inputs = [row for row in rows if row["error"] is None]
            items = [self._item(row) for row in inputs]
            errors = {row["id"]: row["error"] for row in rows if row["error"] is not None}
            self.model.processor = _Preloaded(self.processor, self.item_class)
            try:
                result = self.model.encode(items, self.instruction, on_error="raise", num_workers=1, **self.options)
            finally:
                self.model.processor = self.processor
            vectors = dict(zip((row["id"] for row in inputs), result.numpy(), strict=True))
        else:  # decoded here, by encode's own worker threads
            inputs = [_encode_input(row) for row in rows]
            try:
                result = self.model.encode(
                    inputs, self.instruction, on_error="skip", num_workers=self.num_workers, **self.options
                )
            except ValueError as error:
                raise ItemError(str(error)) from None
            errors = {rows[i]["id"]: r.replace(f"inputs[{i}]", _label(rows[i]), 1) for i, r in result.errors.items()}
            if errors and self.on_error == "raise":
                raise ItemError(next(iter(errors.values())))
            vectors = {
                rows[i]["id"]: vector for i, vector in zip(result.indices, result.embeddings.numpy(), strict=True)
            }
        embeddings = [vectors[row["id"]].astype(np.float32).tobytes() if row["id"] in vectors else b"" for row in rows]
        return _table(rows, embedding=(embeddings, "binary"), error=([errors.get(row["id"]) for row in rows], "string"))

    def _item(self, row: dict[str, Any]):
        import torch
        from transformers.feature_extraction_utils import BatchFeature

        payload = pickle.loads(row["features"])
        features = BatchFeature({key: torch.from_numpy(value) for key, value in payload["features"].items()})
        return self.item_class(
            label=_label(row),
            prompt=payload["prompt"],
            features=features,
            features_max_length=payload["max_length"],
        )


class _Preloaded:
    """The checkpoint's processor, for items already read and featurized by the CPU tasks.

    `model.encode` asks its processor to `load` each input; items that are already loaded pass
    through (their cached features are reused by `featurize`), everything else is the real processor.
    """

    def __init__(self, processor, item_class: type):
        self._processor, self._item_class = processor, item_class

    def load(self, item, *args, **kwargs):
        return item if isinstance(item, self._item_class) else self._processor.load(item, *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._processor, name)


def _rows(batch) -> list[dict[str, Any]]:
    """A pyarrow batch as row dicts (None stays None, unlike numpy or pandas batches)."""
    return batch.to_pylist()


def _table(rows: Sequence[dict[str, Any]], **columns: tuple[list, str]):
    """A stage's output: the rows' `row`, `shard` and `id`, plus the given (values, pyarrow type) columns."""
    import pyarrow as pa

    data = {
        "row": pa.array([row["row"] for row in rows], pa.int64()),
        "shard": pa.array([row["shard"] for row in rows], pa.int64()),
        "id": pa.array([row["id"] for row in rows], pa.string()),
    }
    for name, (values, kind) in columns.items():
        data[name] = pa.array(values, getattr(pa, kind)())
    return pa.table(data)


def _numpy(value: Any) -> Any:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


# ------------------------------------------------------------------ the run


@dataclass
class Summary:
    """What `embed_corpus` did."""

    out: Path
    items: int = 0  # rows in the manifest
    embedded: int = 0  # embedded and written by this run
    resumed: int = 0  # already in finished shards, not recomputed
    failed: int = 0  # bad items this run (in the errors files)
    shards_written: list[int] = field(default_factory=list)
    shards_skipped: list[int] = field(default_factory=list)
    shards_left: int = 0  # not done because of --max-shards
    seconds: float = 0.0
    index: Path | None = None

    @property
    def items_per_second(self) -> float:
        return (self.embedded + self.failed) / self.seconds if self.seconds else 0.0

    def report(self) -> str:
        lines = [
            f"items in manifest: {self.items}",
            f"embedded:          {self.embedded} ({len(self.shards_written)} shard(s) written)",
            f"skipped (done):    {self.resumed} ({len(self.shards_skipped)} finished shard(s) from earlier runs)",
            f"failed:            {self.failed}" + (f" (listed in {self.out / 'errors.jsonl'})" if self.failed else ""),
            f"speed:             {self.items_per_second:.2f} items/s ({self.seconds:.1f} s)",
            f"embeddings:        {self.out / 'embeddings'}",
        ]
        if self.shards_left:
            lines.append(f"not done:          {self.shards_left} shard(s) left by --max-shards; re-run to continue")
        if self.index:
            lines.append(f"index:             {self.index} (ids in {self.index.with_suffix('.json')})")
        return "\n".join(lines)


def shard_path(out: Path, shard: int) -> Path:
    return out / "embeddings" / f"part-{shard:05d}.parquet"


def errors_path(out: Path, shard: int) -> Path:
    return out / "errors" / f"part-{shard:05d}.jsonl"


@contextmanager
def _open_shard(path: Path) -> Iterator[Any]:
    """A finished shard, open as a `pyarrow.parquet.ParquetFile`: the one place shards are read, so that a
    damaged one raises `DamagedShard` naming it and the fix, not arrow's bare error.

    Opening reads the footer (a shard cut short or overwritten has none); reading the rows finds damage inside.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as shard:
            yield shard
    except (FileNotFoundError, PermissionError):
        raise
    except (pa.ArrowException, OSError) as error:  # arrow reports a bad page header as a plain OSError
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DamagedShard(
            f"shard {path} is damaged ({reason}): delete it and run again to re-embed its rows"
        ) from error


def shard_metadata(path: Path) -> dict[str, Any]:
    """The GVE metadata of a written shard (settings, shard number, rows digest, counts), from its footer."""
    with _open_shard(path) as shard:
        metadata = shard.schema_arrow.metadata or {}
    if METADATA_KEY not in metadata:
        raise OutputMismatch(f"{path} has no GVE metadata; it was not written by embed_corpus")
    return json.loads(metadata[METADATA_KEY])


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Use the running Ray, attach to `address`, or start Ray locally; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return True


def embed_corpus(
    manifest: str | Path,
    out: str | Path,
    checkpoint: str,
    *,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    float16: bool = False,
    instruction: str | None = None,
    on_error: str = "raise",
    concurrency: int = 1,
    num_gpus: float = 0.0,
    actor_cpus: float = 1.0,
    batch_size: int = 16,
    max_batch_tokens: int = 16384,
    num_workers: int | None = None,
    preprocess_mode: str = "tasks",
    shard_size: int = DEFAULT_SHARD_SIZE,
    max_shards: int | None = None,
    show_progress_bar: bool = True,
) -> Summary:
    """Embed a manifest into Parquet shards under `out` (see the module docstring); Ray must be initialised.

    Raises:
        ManifestError: the manifest is invalid.
        OutputMismatch: `out` holds embeddings of other settings or other manifest rows.
        DamagedShard: a finished shard in `out` cannot be read.
        ItemError: with `on_error="raise"`, an item that cannot be embedded (named by id and row).
    """
    import ray
    from tqdm.auto import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if preprocess_mode not in ("tasks", "actor"):
        raise ValueError(f"preprocess_mode must be 'tasks' or 'actor', got {preprocess_mode!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    out = Path(out)
    started = time.perf_counter()
    rows = read_manifest(manifest)
    settings = run_settings(
        checkpoint, revision, dtype=dtype, float16=float16, instruction=instruction, shard_size=shard_size
    )
    _check_settings(out, settings)
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for stale in (out / folder).glob(".*.tmp"):  # left by an interrupted run
            stale.unlink()

    shards = [rows[start : start + shard_size] for start in range(0, len(rows), shard_size)]
    summary = Summary(out=out, items=len(rows))
    pending = []
    for number, shard_rows in enumerate(shards):
        path = shard_path(out, number)
        if path.exists():
            written = shard_metadata(path)
            if written.get("settings") != settings:
                raise OutputMismatch(f"{path} was written with other settings than {out / 'settings.json'}")
            if written.get("digest") != shard_digest(shard_rows):
                raise OutputMismatch(
                    f"{path} holds manifest rows {number * shard_size + 1} to {number * shard_size + len(shard_rows)} "
                    "as they were when it was written, and the manifest has changed there (rows edited, added "
                    "before them, or reordered). Use a new --out folder, or delete the shards from this one on."
                )
            summary.shards_skipped.append(number)
            summary.resumed += len(shard_rows)
        else:
            errors_path(out, number).unlink(missing_ok=True)
            pending.append(number)
    if max_shards is not None:
        summary.shards_left = max(0, len(pending) - max_shards)
        pending = pending[:max_shards]

    if pending:
        _run_pipeline(
            summary,
            shards,
            pending,
            settings,
            tqdm=tqdm,
            ray=ray,
            device=device,
            dtype=dtype,
            instruction=instruction,
            on_error=on_error,
            concurrency=concurrency,
            num_gpus=num_gpus,
            actor_cpus=actor_cpus,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            num_workers=num_workers,
            preprocess_mode=preprocess_mode,
            show_progress_bar=show_progress_bar,
        )
    gather_errors(out)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_pipeline(summary: Summary, shards: list, pending: list[int], settings: dict, *, tqdm, ray, **options) -> None:
    """Run the Ray Data pipeline over the pending shards, writing each one as soon as all its rows are back."""
    import pyarrow as pa
    from ray import cloudpickle

    if __name__ != "__main__":  # ship this module's functions to the workers by value: they need no copy of it
        cloudpickle.register_pickle_by_value(sys.modules[__name__])

    checkpoint, revision, on_error = settings["checkpoint"], settings["revision"], options["on_error"]
    _wait_for_cpus(ray, _check_resources(ray, options))
    table = pa.Table.from_pylist(
        [
            {**row, "row": number * settings["shard_size"] + offset, "shard": number}
            for number in pending
            for offset, row in enumerate(shards[number])
        ],
        schema=pa.schema(
            [(key, pa.string()) for key in MANIFEST_FIELDS] + [("row", pa.int64()), ("shard", pa.int64())]
        ),
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one tqdm bar below instead of Ray's per-operator bars
    batch = options["batch_size"]
    # Blocks cut here, in the driver: a repartition would need CPU tasks of its own.
    step = max(batch * 2, -(-len(table) // 256))
    dataset = ray.data.from_arrow([table.slice(start, step) for start in range(0, len(table), step)])
    if options["preprocess_mode"] == "tasks":
        dataset = dataset.map_batches(
            preprocess,
            batch_size=max(1, batch // 2),
            batch_format="pyarrow",
            fn_kwargs={
                "checkpoint": checkpoint,
                "revision": revision,
                "instruction": options["instruction"],
                "on_error": on_error,
            },
            # One CPU and room for a few decoded videos a task. Asking for memory also keeps Ray from
            # fusing this stage into the model actors (it fuses stages with equal resource requests).
            num_cpus=1,
            memory=DECODE_TASK_MEMORY,
        )
    dataset = dataset.map_batches(
        Embedder,
        batch_size=batch * 2,
        batch_format="pyarrow",  # a window of encode's own pipeline; it batches within it by length and tokens
        fn_constructor_kwargs={
            "checkpoint": checkpoint,
            "revision": revision,
            "device": options["device"],
            "dtype": options["dtype"],
            "instruction": options["instruction"],
            "on_error": on_error,
            "batch_size": batch,
            "max_batch_tokens": options["max_batch_tokens"],
            "num_workers": options["num_workers"],
        },
        compute=ray.data.ActorPoolStrategy(size=options["concurrency"]),
        num_gpus=options["num_gpus"] or None,
        num_cpus=options["actor_cpus"],
    )

    expected = {number: len(shards[number]) for number in pending}
    results: dict[int, list[dict]] = {number: [] for number in pending}
    total = sum(expected.values())
    progress = tqdm(total=total, desc="Embedding", unit="item", disable=not options["show_progress_bar"])
    try:
        for outputs in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for output in outputs.to_pylist():
                number = output["shard"]
                results[number].append(output)
                progress.update(1)
                if len(results[number]) == expected[number]:
                    written, failed = write_shard(summary.out, number, shards[number], results.pop(number), settings)
                    summary.embedded += written
                    summary.failed += failed
                    summary.shards_written.append(number)
                    progress.set_postfix(shards=len(summary.shards_written), failed=summary.failed)
    except Exception as error:
        item_error = _find_item_error(error)
        if item_error is not None:
            raise ItemError(
                f"{item_error} -- stopped (--on-error raise); {len(summary.shards_written)} shard(s) were written "
                "and are kept. Fix or remove the item, or use --on-error skip, and re-run to resume."
            ) from None
        raise
    finally:
        progress.close()


def _check_resources(ray, options: dict) -> float:
    """Refuse a plan whose actors would hold every CPU: the decoding tasks would then never run.

    Returns the CPUs the plan needs.
    """
    cpus = ray.cluster_resources().get("CPU", 0)
    needed = options["concurrency"] * options["actor_cpus"] + (1 if options["preprocess_mode"] == "tasks" else 0)
    if needed > cpus:
        raise PlanError(
            f"{options['concurrency']} model actor(s) x {options['actor_cpus']} CPU"
            + (" + 1 CPU for the decoding tasks" if options["preprocess_mode"] == "tasks" else "")
            + f" need {needed:g} CPUs, and Ray has {cpus:g}: lower --concurrency or --actor-cpus "
            "(e.g. --actor-cpus 0.5), or give Ray more CPUs."
        )
    return needed


def _wait_for_cpus(ray, needed: float) -> None:
    """Wait (at most RELEASE_TIMEOUT seconds) until Ray has `needed` CPUs free.

    Ray Data stops a finished or failed run's model actors asynchronously, and a run started in the same
    process meanwhile (a resume after an error, in a notebook or a test) was seen to wait forever for the CPU
    that a dead run's actor kept.
    """
    import gc

    deadline = time.monotonic() + RELEASE_TIMEOUT
    gc.collect()  # an old run's actor handles in a reference cycle: the actors are stopped once it is collected
    while ray.available_resources().get("CPU", 0) < needed and time.monotonic() < deadline:
        time.sleep(0.1)
        gc.collect()


def write_shard(
    out: Path, number: int, rows: Sequence[dict], results: Sequence[dict], settings: dict[str, Any]
) -> tuple[int, int]:
    """Write one finished shard: its errors file, then its Parquet file, each by rename.

    Returns the numbers of items embedded and failed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_id = {result["id"]: result for result in results}
    good, bad = [], []
    for row in rows:  # manifest order
        result = by_id[row["id"]]
        (bad if result["error"] is not None else good).append(result)
    dimension = settings["dimension"]
    vectors = np.frombuffer(b"".join(result["embedding"] for result in good), dtype=np.float32).reshape(-1, dimension)
    if settings["embedding_dtype"] == "float16":
        vectors, value_type = vectors.astype(np.float16), pa.float16()
    else:
        value_type = pa.float32()
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=value_type), dimension)
    metadata = {
        "settings": settings,
        "shard": number,
        "first_row": number * settings["shard_size"],
        "rows": len(rows),
        "digest": shard_digest(rows),
        "embedded": len(good),
        "failed": len(bad),
    }
    table = pa.table({"id": pa.array([result["id"] for result in good], pa.string()), "embedding": embedding})
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})

    if bad:
        lines = [json.dumps({"id": r["id"], "row": r["row"] + 1, "error": r["error"]}) + "\n" for r in bad]
        _write_atomic(errors_path(out, number), "".join(lines).encode())
    path = shard_path(out, number)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    _replace_durably(temporary, path)
    return len(good), len(bad)


def gather_errors(out: Path) -> Path:
    """Rewrite `errors.jsonl` from the finished shards' errors files, in manifest order."""
    finished = {path.stem for path in (out / "embeddings").glob("part-*.parquet")}
    parts = sorted(path for path in (out / "errors").glob("part-*.jsonl") if path.stem in finished)
    _write_atomic(out / "errors.jsonl", b"".join(path.read_bytes() for path in parts))
    return out / "errors.jsonl"


def read_embeddings(out: str | Path) -> tuple[list[str], np.ndarray]:
    """All ids and embeddings (float32) of an output folder, in manifest order.

    Raises:
        DamagedShard: a shard cannot be read.
    """
    ids, parts = [], []
    for path in sorted((Path(out) / "embeddings").glob("part-*.parquet")):
        for shard_ids, vectors in _shard_batches(path):
            ids.extend(shard_ids)
            parts.append(vectors)
    dimension = json.loads((Path(out) / "settings.json").read_text())["dimension"]
    return ids, (np.concatenate(parts) if parts else np.empty((0, dimension), np.float32))


def _shard_batches(path: Path) -> Iterator[tuple[list[str], np.ndarray]]:
    with _open_shard(path) as shard:
        table = shard.read()
    column = table.column("embedding").combine_chunks()
    dimension = column.type.list_size
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(-1, dimension).astype(np.float32)
    yield table.column("id").to_pylist(), vectors


# ------------------------------------------------------------------ FAISS


def build_index(out: str | Path, kind: str = "auto", nlist: int | None = None, nprobe: int = 32) -> Path:
    """Build a FAISS inner-product index over the shards of `out`; returns the index path.

    `kind="auto"` is exact (IndexFlatIP) up to `EXACT_INDEX_LIMIT` vectors and IVF (IndexIVFFlat,
    `nlist` = 4·sqrt(n) lists by default, `nprobe` searched) above. Vectors are re-normalised (float16
    shards round them), so scores are cosines. Writes `index.faiss` and `index.json` (ids in index order).

    Raises:
        DamagedShard: a shard cannot be read.
    """
    import faiss

    out = Path(out)
    ids, vectors = read_embeddings(out)
    if not ids:
        raise ValueError(f"{out} has no embeddings to index")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.normalize_L2(vectors)
    count, dimension = vectors.shape
    if kind == "auto":
        kind = "flat" if count <= EXACT_INDEX_LIMIT else "ivf"
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "ivf":
        nlist = nlist or max(1, min(count // 39, int(4 * count**0.5)))  # FAISS wants >= 39 training points a list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(count)[: 256 * nlist]]
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    else:
        raise ValueError(f"index kind must be 'auto', 'flat' or 'ivf', got {kind!r}")
    index.add(vectors)
    path = out / "index.faiss"
    temporary = out / ".index.faiss.tmp"
    faiss.write_index(index, str(temporary))
    _replace_durably(temporary, path)
    settings = json.loads((out / "settings.json").read_text())
    description = {"kind": kind, "count": count, "dimension": dimension, "settings": settings, "ids": ids}
    if kind == "ivf":
        description.update(nlist=index.nlist, nprobe=index.nprobe)
    _write_atomic(out / "index.json", json.dumps(description).encode())
    return path


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Embed a manifest of texts, images and videos with GVE on Ray Data (local mode, or a cluster "
        "with --address) into resumable Parquet shards; optionally build a FAISS index for scripts/search_index.py.",
        epilog="The manifest format, the output folder and the resume rules are in the module docstring "
        "(python -c 'import gve_tools.embed_corpus as m; help(m)').",
    )
    parser.add_argument("manifest", type=Path, help="JSONL or Parquet manifest: id, and any of text, image, video")
    parser.add_argument("--checkpoint", required=True, help="GVE checkpoint: local folder or Hub repo id")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit); the commit is recorded")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created; re-run into it to resume)")
    parser.add_argument("--address", help="Ray cluster to attach to (e.g. auto, ray://host:10001); default: local Ray")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all); ignored with --address")
    parser.add_argument("--concurrency", type=int, default=1, help="model actors (default 1)")
    parser.add_argument(
        "--num-gpus", type=float, default=0.0, help="GPUs per model actor, e.g. 1, or 0.5 for two a GPU"
    )
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs reserved per model actor (default 1)")
    parser.add_argument("--device", default="cpu", help="device of the model in each actor: cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="model dtype (bfloat16 on GPUs)")
    parser.add_argument("--float16", action="store_true", help="store embeddings as float16 (default float32)")
    parser.add_argument("--batch-size", type=int, default=16, help="most items per forward pass (default 16)")
    parser.add_argument(
        "--max-batch-tokens", type=int, default=16384, help="most tokens per forward pass, padding included"
    )
    parser.add_argument(
        "--preprocess",
        default="tasks",
        choices=("tasks", "actor"),
        help="where items are decoded: Ray CPU tasks (default) or encode's threads inside each model actor",
    )
    parser.add_argument("--num-workers", type=int, help="decoding threads per actor with --preprocess actor")
    parser.add_argument("--instruction", help="system instruction for every row (default: the checkpoint's)")
    parser.add_argument("--on-error", default="raise", choices=("raise", "skip"), help="bad items: stop, or list them")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="manifest rows per output shard")
    parser.add_argument("--max-shards", type=int, help="stop after this many new shards (re-run to continue)")
    parser.add_argument("--index", action="store_true", help="build a FAISS index over all shards at the end")
    parser.add_argument("--index-kind", default="auto", choices=("auto", "flat", "ivf"), help="exact or IVF (auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    started_ray = ensure_ray(args.address, args.num_cpus)
    try:
        summary = embed_corpus(
            args.manifest,
            args.out,
            args.checkpoint,
            revision=args.revision,
            device=args.device,
            dtype=args.dtype,
            float16=args.float16,
            instruction=args.instruction,
            on_error=args.on_error,
            concurrency=args.concurrency,
            num_gpus=args.num_gpus,
            actor_cpus=args.actor_cpus,
            batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            num_workers=args.num_workers,
            preprocess_mode=args.preprocess,
            shard_size=args.shard_size,
            max_shards=args.max_shards,
            show_progress_bar=not args.no_progress,
        )
        if args.index and not summary.shards_left:
            summary.index = build_index(args.out, kind=args.index_kind)
    except (ManifestError, OutputMismatch, PlanError, ItemError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
