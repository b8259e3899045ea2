"""The FAISS index over an output folder's shards (`build_index`), and searching it (`load_index`, `search`).

The index is inner product over re-normalised vectors, so scores are cosines: exact (IndexFlatIP) up to
`EXACT_INDEX_LIMIT` vectors, IVF (IndexIVFFlat) above. `index.faiss` holds it and `index.json` its ids (in index
order), its kind and the run's settings. A query is embedded with the index's own checkpoint and revision, with
the query instruction by default (the corpus was embedded as documents).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.corpus.shards import read_embeddings, replace_durably, write_atomic
from gve_tools.models import load_model
from gve_tools.repo import query_instruction

# At most this many vectors, the index is exact (IndexFlatIP); above it, IVF (IndexIVFFlat, inner product).
EXACT_INDEX_LIMIT = 100_000
_QUERY_INSTRUCTION = object()  # search's default: GVE's query instruction, read from the remote code when needed


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
    replace_durably(temporary, path)
    settings = json.loads((out / "settings.json").read_text())
    description = {"kind": kind, "count": count, "dimension": dimension, "settings": settings, "ids": ids}
    if kind == "ivf":
        description.update(nlist=index.nlist, nprobe=index.nprobe)
    write_atomic(out / "index.json", json.dumps(description).encode())
    return path


def load_index(folder: str | Path) -> tuple[Any, list[str], dict[str, Any]]:
    """The FAISS index of an embed_corpus output folder, its ids (in index order) and its description."""
    import faiss

    folder = Path(folder)
    if not (folder / "index.faiss").is_file():
        raise FileNotFoundError(f"{folder} has no index.faiss; run embed_corpus.py with --index first")
    description = json.loads((folder / "index.json").read_text())
    index = faiss.read_index(str(folder / "index.faiss"))
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


def search(
    folder: str | Path,
    queries: list[Any],
    model=None,
    k: int = 10,
    instruction: str | None = _QUERY_INSTRUCTION,
    loaded: tuple | None = None,
) -> list[list[tuple[str, float]]]:
    """Top-k `(id, cosine)` for each query (a text, or a dict with any of `text`, `image`, `video`).

    `model` defaults to the index's checkpoint; `instruction` to GVE's query instruction
    (`gve_tools.repo.query_instruction()`; None is the checkpoint's default, the documents'); `loaded` is
    `load_index(folder)`, to reuse it.
    """
    if instruction is _QUERY_INSTRUCTION:
        instruction = query_instruction()
    index, ids, description = loaded or load_index(folder)
    model = model or load_query_model(description)
    vectors = model.encode(queries, instruction=instruction, show_progress_bar=False).numpy().astype(np.float32)
    if vectors.shape[1] != index.d:
        raise ValueError(f"the model embeds in {vectors.shape[1]} dimensions, the index has {index.d}")
    scores, positions = index.search(np.ascontiguousarray(vectors), min(k, len(ids)))
    results = []
    for row_positions, row_scores in zip(positions, scores, strict=True):
        hits = zip(row_positions, row_scores, strict=True)
        results.append([(ids[position], float(score)) for position, score in hits if position >= 0])
    return results
