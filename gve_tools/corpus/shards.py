"""The output folder's files: where shards and errors files go, durable writes, writing a finished shard and its
errors, and reading shards back (a damaged one raises `DamagedShard`, naming it and the fix).

Shard k always holds manifest rows [k * shard_size, (k + 1) * shard_size); its footer records the run's settings
and its rows' digest (`shard_metadata`), which a resume checks. Its columns are `id`, `start`, `end` (float64
seconds, `item_span`) and `embedding`: one row per item embedded whole, and one per segment of a video embedded as
segments (in time order), all in manifest order.
"""

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.corpus.manifest import shard_digest
from gve_tools.errors import GVEToolsError
from gve_tools.text import first_line

METADATA_KEY = b"gve"


class OutputMismatch(GVEToolsError, ValueError):
    """The output folder holds embeddings made with other settings or from other manifest rows."""


class DamagedShard(OutputMismatch):
    """A finished shard that cannot be read (cut short, or overwritten); the message names it and the fix."""


def shard_path(out: Path, shard: int) -> Path:
    return out / "embeddings" / f"part-{shard:05d}.parquet"


def errors_path(out: Path, shard: int) -> Path:
    return out / "errors" / f"part-{shard:05d}.jsonl"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` through a hidden temporary file and `replace_durably`."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    replace_durably(temporary, path)


def replace_durably(temporary: Path, path: Path) -> None:
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


def item_span(row: dict[str, Any]) -> tuple[float | None, float | None]:
    """The `start` and `end` of a manifest row embedded as one vector (a segment has its own).

    (None, None): the whole item, with no time range (a text, an image, a composed input, a whole video, which
    includes a video no longer than `--segment-seconds`). A row with its own `video_start`/`video_end` has them,
    a missing start being 0.0 and a missing end None (to the video's end).
    """
    start, end = row.get("video_start"), row.get("video_end")
    if start is None and end is None:
        return None, None
    return (0.0 if start is None else float(start)), (None if end is None else float(end))


def write_shard(
    out: Path, number: int, rows: Sequence[dict], results: Sequence[dict], settings: dict[str, Any]
) -> tuple[int, int]:
    """Write one finished shard: its errors file, then its Parquet file, each by rename.

    `results` are the pipeline's outputs for the shard's rows: `id`, `row`, `embedding` (float32 bytes: one
    vector, or one per segment), `starts` and `ends` (a segmented row's spans, else None or absent) and `error`
    (None, or why the item could not be embedded). Returns the numbers of items embedded and failed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_id = {result["id"]: result for result in results}
    good, bad = [], []
    for row in rows:  # manifest order
        result = by_id[row["id"]]
        (bad if result["error"] is not None else good).append((row, result))
    dimension = settings["dimension"]
    vectors = np.frombuffer(b"".join(result["embedding"] for _, result in good), dtype=np.float32).reshape(
        -1, dimension
    )
    ids, starts, ends = [], [], []
    for row, result in good:
        spans = list(zip(result["starts"], result["ends"], strict=True)) if result.get("starts") else [item_span(row)]
        ids.extend([result["id"]] * len(spans))
        starts.extend(start for start, _ in spans)
        ends.extend(end for _, end in spans)
    if len(ids) != len(vectors):  # each segment has its vector: anything else is a bug, never a shard
        raise ValueError(f"shard {number}: {len(vectors)} vectors for {len(ids)} rows and segments")
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
        "vectors": len(ids),
    }
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "start": pa.array(starts, pa.float64()),
            "end": pa.array(ends, pa.float64()),
            "embedding": embedding,
        }
    )
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})

    if bad:
        lines = [json.dumps({"id": r["id"], "row": r["row"] + 1, "error": r["error"]}) + "\n" for _, r in bad]
        write_atomic(errors_path(out, number), "".join(lines).encode())
    path = shard_path(out, number)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    replace_durably(temporary, path)
    return len(good), len(bad)


def gather_errors(out: Path) -> Path:
    """Rewrite `errors.jsonl` from the finished shards' errors files, in manifest order."""
    finished = {path.stem for path in (out / "embeddings").glob("part-*.parquet")}
    parts = sorted(path for path in (out / "errors").glob("part-*.jsonl") if path.stem in finished)
    write_atomic(out / "errors.jsonl", b"".join(path.read_bytes() for path in parts))
    return out / "errors.jsonl"


@contextmanager
def open_shard(path: Path) -> Iterator[Any]:
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
        raise DamagedShard(
            f"shard {path} is damaged ({first_line(error)}): delete it and run again to re-embed its rows"
        ) from error


def shard_metadata(path: Path) -> dict[str, Any]:
    """The GVE metadata of a written shard (settings, shard number, rows digest, counts), from its footer."""
    with open_shard(path) as shard:
        metadata = shard.schema_arrow.metadata or {}
    if METADATA_KEY not in metadata:
        raise OutputMismatch(f"{path} has no GVE metadata; it was not written by embed_corpus")
    return json.loads(metadata[METADATA_KEY])


@dataclass
class CorpusVectors:
    """An output folder's shard rows, in manifest order (a segmented video's segments in time order)."""

    ids: list[str]
    starts: list[float | None]  # seconds; None: the whole item (`item_span`)
    ends: list[float | None]  # seconds; None: the whole item, or to the video's end
    embeddings: np.ndarray  # [len(ids), D] float32

    @property
    def spans(self) -> list[tuple[float | None, float | None]]:
        return list(zip(self.starts, self.ends, strict=True))


def read_corpus(out: str | Path) -> CorpusVectors:
    """All shard rows of an output folder: ids, spans and embeddings (float32), in manifest order.

    Shards written before `start` and `end` existed read as whole items.

    Raises:
        DamagedShard: a shard cannot be read.
    """
    ids, starts, ends, parts = [], [], [], []
    for path in sorted((Path(out) / "embeddings").glob("part-*.parquet")):
        shard = _read_shard(path)
        ids.extend(shard.ids)
        starts.extend(shard.starts)
        ends.extend(shard.ends)
        parts.append(shard.embeddings)
    dimension = json.loads((Path(out) / "settings.json").read_text())["dimension"]
    vectors = np.concatenate(parts) if parts else np.empty((0, dimension), np.float32)
    return CorpusVectors(ids, starts, ends, vectors)


def read_embeddings(out: str | Path) -> tuple[list[str], np.ndarray]:
    """All ids and embeddings (float32) of an output folder, in manifest order: one per vector, so a video
    embedded as segments has its id once per segment (`read_corpus` has their spans).

    Raises:
        DamagedShard: a shard cannot be read.
    """
    corpus = read_corpus(out)
    return corpus.ids, corpus.embeddings


def _read_shard(path: Path) -> CorpusVectors:
    with open_shard(path) as shard:
        table = shard.read()
    column = table.column("embedding").combine_chunks()
    dimension = column.type.list_size
    vectors = column.values.to_numpy(zero_copy_only=False).reshape(-1, dimension).astype(np.float32)
    ids = table.column("id").to_pylist()
    names = table.column_names
    starts = table.column("start").to_pylist() if "start" in names else [None] * len(ids)
    ends = table.column("end").to_pylist() if "end" in names else [None] * len(ids)
    return CorpusVectors(ids, starts, ends, vectors)
