"""The FAISS index over an output folder's shards (`build_index`), and searching it (`load_index`, `search`).

The index holds re-normalised vectors in one of `gve_tools.vectors`' formats: float32 (inner product, so scores
are cosines), int8 (FAISS's 8-bit scalar quantizer) or binary (sign bits, hamming). It is exact up to
`EXACT_INDEX_LIMIT` vectors, IVF above: one vector per shard row, so one per segment of a video embedded as
segments. `index.faiss` holds it and `index.json` its ids (in index order), their spans (`spans`: [start, end] in
seconds for each vector, [null, null] for a whole item; left out when no vector has one), its kind, its vector
format and the run's settings. An int8 or binary index keeps the float vectors beside it
(`vectors.npy`, float16), from which a search re-scores its top candidates (read through a memory map, so only
those rows are read). A query is embedded with the index's own checkpoint and revision, with the query
instruction by default (the corpus was embedded as documents). A search returns `Hit`s (id, score, start, end);
`by_video=True` ranks ids instead, each scored by its best vector (a video by its best segment), searching deeper
until it has k distinct ids.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gve_tools.corpus.shards import read_corpus, replace_durably, write_atomic
from gve_tools.models import load_model
from gve_tools.repo import query_instruction
from gve_tools.vectors import VectorFormat, make_index
from gve_tools.vectors import search as search_vectors

# At most this many vectors, the index is exact (flat); above it, IVF.
EXACT_INDEX_LIMIT = 100_000
# An int8 or binary index re-scores its top 100 by the float vectors unless told otherwise: 10x the usual k of 10
# brings recall@10 back to about float's (benchmarks/vector-index.json: binary 0.57-0.64 -> 0.98-0.995) for 100
# float16 rows read a query (0.7 MB at 3584 dimensions, under 1 ms warm), whatever the corpus's size.
DEFAULT_RESCORE = 100
FLOAT_VECTORS = "vectors.npy"  # the float vectors of a compact index, float16 unit vectors in index order
_QUERY_INSTRUCTION = object()  # search's default: GVE's query instruction, read from the remote code when needed


class Hit(NamedTuple):
    """A search result: the id, its score, and the time range of the vector that scored (seconds; None for a whole
    item, and an end of None runs to the video's end: `gve_tools.corpus.shards.item_span`)."""

    id: str
    score: float
    start: float | None = None
    end: float | None = None


def build_index(
    out: str | Path,
    kind: str = "auto",
    nlist: int | None = None,
    nprobe: int = 32,
    vectors: VectorFormat | str = "float32",
    rescore: int | None = None,
) -> Path:
    """Build a FAISS index over the shards of `out` in the vector format `vectors`; returns the index path.

    `kind="auto"` is exact (flat) up to `EXACT_INDEX_LIMIT` vectors and IVF (`nlist` = 4·sqrt(n) lists by
    default, `nprobe` searched) above. Vectors are re-normalised (float16 shards round them), so float32 scores
    are cosines. `vectors` is a kind (float32, int8, binary) or a whole `VectorFormat`; `rescore` is the default
    re-scoring depth of an int8 or binary index (`DEFAULT_RESCORE` for a kind; a `VectorFormat`'s own rescore;
    0 is off). Writes `index.faiss` and `index.json` (ids in index order, their spans, the format), and for int8 and
    binary `vectors.npy`, the float vectors the re-scoring reads.

    Raises:
        DamagedShard: a shard cannot be read.
        ValueError: a bad kind or format (e.g. rescore with float32).
    """
    import faiss

    out = Path(out)
    fmt = vector_format(vectors, rescore)
    if kind not in ("auto", "flat", "ivf"):
        raise ValueError(f"index kind must be 'auto', 'flat' or 'ivf', got {kind!r}")
    corpus = read_corpus(out)
    ids, embeddings = corpus.ids, corpus.embeddings
    if not ids:
        raise ValueError(f"{out} has no embeddings to index")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    faiss.normalize_L2(embeddings)
    count, dimension = embeddings.shape
    if kind == "auto":
        kind = "flat" if count <= EXACT_INDEX_LIMIT else "ivf"
    index = make_index(embeddings, fmt, kind=kind, nlist=nlist, nprobe=nprobe)
    description = {"kind": kind, "count": count, "dimension": dimension, "vectors": fmt.as_json()}
    if fmt.kind != "float32":
        temporary = out / f".{FLOAT_VECTORS}.tmp"
        with open(temporary, "wb") as file:
            np.save(file, embeddings.astype(np.float16))
        replace_durably(temporary, out / FLOAT_VECTORS)
        description["float_vectors"] = FLOAT_VECTORS
    path = out / "index.faiss"
    temporary = out / ".index.faiss.tmp"
    (faiss.write_index_binary if fmt.kind == "binary" else faiss.write_index)(index, str(temporary))
    replace_durably(temporary, path)
    description.update(settings=json.loads((out / "settings.json").read_text()), ids=ids)
    if any(start is not None for start in corpus.starts):
        description["spans"] = [list(span) for span in corpus.spans]
    if kind == "ivf":
        description.update(nlist=index.nlist, nprobe=index.nprobe)
    write_atomic(out / "index.json", json.dumps(description).encode())
    if fmt.kind == "float32":
        (out / FLOAT_VECTORS).unlink(missing_ok=True)  # an earlier compact index's
    return path


def vector_format(vectors: VectorFormat | str, rescore: int | None = None) -> VectorFormat:
    """The format `build_index` gives an index: a kind (with `DEFAULT_RESCORE` for int8 and binary unless `rescore`
    says otherwise) or a whole `VectorFormat` (its rescore replaced by `rescore` if given).

    Raises:
        ValueError: an unknown kind, or rescore with float32.
    """
    if isinstance(vectors, VectorFormat):
        return vectors if rescore is None else dataclasses.replace(vectors, rescore=rescore)
    if rescore is None:
        rescore = 0 if vectors == "float32" else DEFAULT_RESCORE
    return VectorFormat(vectors, rescore=rescore)


def index_format(description: dict[str, Any]) -> VectorFormat:
    """The vector format an `index.json` records (float32 for an index written before formats were recorded)."""
    return VectorFormat(**description.get("vectors", {}))


def load_index(folder: str | Path) -> tuple[Any, list[str], dict[str, Any]]:
    """The FAISS index of an embed_corpus output folder, its ids (in index order) and its description (with the
    ids' `spans` when the index has any)."""
    import faiss

    folder = Path(folder)
    if not (folder / "index.faiss").is_file():
        raise FileNotFoundError(f"{folder} has no index.faiss; run embed_corpus.py with --index first")
    description = json.loads((folder / "index.json").read_text())
    read = faiss.read_index_binary if index_format(description).kind == "binary" else faiss.read_index
    index = read(str(folder / "index.faiss"))
    if "nprobe" in description:
        index.nprobe = description["nprobe"]
    return index, description.pop("ids"), description


def load_query_model(description: dict[str, Any], device: str = "cpu", dtype: str = "float32"):
    """The model the index was built with (same checkpoint and revision).

    Raises:
        ModelLoadError: the checkpoint cannot be loaded, naming it.
    """
    settings = description["settings"]
    return load_model(settings["checkpoint"], revision=settings["revision"], device=device, dtype=dtype)


def search_format(description: dict[str, Any], rescore: int | None = None) -> VectorFormat:
    """How `search` scores: the index's format, with `rescore` (0: off) instead of its default depth if given.

    Raises:
        ValueError: rescore asked of a float32 index, or a negative one.
    """
    fmt = index_format(description)
    return fmt if rescore is None else dataclasses.replace(fmt, rescore=rescore)


def search(
    folder: str | Path,
    queries: list[Any],
    model=None,
    k: int = 10,
    instruction: str | None = _QUERY_INSTRUCTION,
    loaded: tuple | None = None,
    rescore: int | None = None,
    by_video: bool = False,
) -> list[list[Hit]]:
    """Top-k `Hit`s (id, score, start, end) for each query (a text, or a dict with any of `text`, `image`, `video`).

    A video embedded as segments has one vector per segment, so several of its segments can be hits. With
    `by_video`, the hits are the top-k distinct ids instead, each with its best vector's score and span (a video's
    score is its best segment's): the search goes deeper (4x at a time) until each query has k distinct ids or
    the whole index was searched.

    Scores are cosines for a float32 index and for a re-scored one; otherwise the compact score (int8: the
    query's inner product with the int8 vectors; binary: 1 - 2·hamming/D of the sign bits). `model` defaults to
    the index's checkpoint; `instruction` to GVE's query instruction (`gve_tools.repo.query_instruction()`; None is
    the checkpoint's default, the documents'); `loaded` is `load_index(folder)`, to reuse it; `rescore` replaces
    the index's re-scoring depth (0: off).

    Raises:
        FileNotFoundError: a re-scoring without the index's float vectors.
        ValueError: the model's dimension is not the index's, or a bad `rescore`.
    """
    if instruction is _QUERY_INSTRUCTION:
        instruction = query_instruction()
    index, ids, description = loaded or load_index(folder)
    fmt = search_format(description, rescore)
    float_vectors = None
    if fmt.rescore:
        path = Path(folder) / description.get("float_vectors", FLOAT_VECTORS)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: it re-scores the index's top {fmt.rescore} (0 is off)")
        float_vectors = np.load(path, mmap_mode="r")
    model = model or load_query_model(description)
    vectors = model.encode(queries, instruction=instruction, show_progress_bar=False).numpy().astype(np.float32)
    dimension = description.get("dimension", index.d)
    if vectors.shape[1] != dimension:
        raise ValueError(f"the model embeds in {vectors.shape[1]} dimensions, the index has {dimension}")
    spans = description.get("spans")

    def hits(row_positions, row_scores) -> list[Hit]:
        found = zip(row_positions, row_scores, strict=True)
        return [Hit(ids[at], float(score), *(spans[at] if spans else (None, None))) for at, score in found if at >= 0]

    if not by_video:
        scores, positions = search_vectors(index, vectors, min(k, len(ids)), fmt, float_vectors)
        return [hits(*row) for row in zip(positions, scores, strict=True)]
    wanted = min(k, len(set(ids)))
    depth = min(4 * k, len(ids))
    while True:
        scores, positions = search_vectors(index, vectors, depth, fmt, float_vectors)
        results = [best_per_id(hits(*row)) for row in zip(positions, scores, strict=True)]
        if depth >= len(ids) or all(len(result) >= wanted for result in results):
            return [result[:k] for result in results]
        depth = min(4 * depth, len(ids))


def best_per_id(hits: list[Hit]) -> list[Hit]:
    """Ranked hits, each id's first (its best) only: a video scored by its best segment."""
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.id not in seen:
            seen.add(hit.id)
            best.append(hit)
    return best
