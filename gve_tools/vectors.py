"""Compact vectors: how embeddings are stored and searched (float32, int8, binary), truncated, and re-scored.

The one home for these choices, so that the corpus index (`gve_tools.corpus.index`) and the evaluation
(`scripts/evaluate.py --vectors`) score the same way and the evaluation measures what the index does:

- **float32**: the embeddings as they are; the score is the cosine (inner product of unit vectors).
- **int8**: FAISS's 8-bit scalar quantizer, trained on the corpus (per dimension, its minimum to its maximum in
  256 steps): 1 byte a value. Queries stay float, so the score is the query's inner product with each decoded
  document vector (FAISS's asymmetric search).
- **binary**: one bit a value, its sign (sentence-transformers' "ubinary" packing); queries are binarised too and
  the score is 1 - 2·hamming/dimension, the cosine of the sign vectors.
- **rescore N**: the top N candidates of the compact search are ranked again by the float vectors (kept on disk
  beside a compact index) and placed first; the rest keep their compact order.
- **dims D**: only the first D values, L2-normalised again. GVE was not trained for this (Matryoshka-style);
  `gve_tools.benchmark.compact` measures what it costs.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

VECTOR_KINDS = ("float32", "int8", "binary")
# Bytes a stored value takes, per kind (binary: a bit).
BYTES_PER_VALUE = {"float32": 4.0, "int8": 1.0, "binary": 1 / 8}


@dataclass(frozen=True)
class VectorFormat:
    """How corpus vectors are stored and searched: `kind` (VECTOR_KINDS), `rescore` (top candidates re-ranked
    by the float vectors; 0 is off) and `dims` (the first D values, re-normalised; None keeps all)."""

    kind: str = "float32"
    rescore: int = 0
    dims: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_KINDS:
            raise ValueError(f"vectors must be one of {', '.join(VECTOR_KINDS)}, got {self.kind!r}")
        if self.rescore < 0:
            raise ValueError(f"rescore must be 0 (off) or a number of candidates, got {self.rescore}")
        if self.rescore and self.kind == "float32":
            raise ValueError("rescore re-ranks a compact search by the float vectors; float32 vectors need none")
        if self.dims is not None and self.dims < 1:
            raise ValueError(f"dims must be at least 1, got {self.dims}")

    @property
    def label(self) -> str:
        """A short name: float32, int8, binary+rescore100, float32@64 (dims)."""
        label = self.kind + (f"+rescore{self.rescore}" if self.rescore else "")
        return label + (f"@{self.dims}" if self.dims else "")

    def bytes_per_vector(self, dimension: int) -> float:
        """What one vector takes in the index (the float copy a re-scoring keeps on disk is not counted)."""
        return BYTES_PER_VALUE[self.kind] * (self.dims or dimension)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def truncate(vectors: np.ndarray, dims: int | None) -> np.ndarray:
    """The first `dims` values of each vector, L2-normalised again (float32); all of them when `dims` is None."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dims is None:
        return np.ascontiguousarray(vectors)
    if dims > vectors.shape[-1]:
        raise ValueError(f"cannot keep {dims} dimensions of {vectors.shape[-1]}-dimensional vectors")
    kept = vectors[..., :dims]
    norms = np.linalg.norm(kept, axis=-1, keepdims=True)
    return np.ascontiguousarray(kept / np.maximum(norms, 1e-12))


def binarize(vectors: np.ndarray) -> np.ndarray:
    """Sign bits packed 8 to a byte (uint8, [N, ceil(D/8)]): sentence-transformers' "ubinary" and FAISS's binary
    index layout. A zero counts as negative."""
    return np.packbits(np.asarray(vectors) > 0, axis=-1)


def int8_quantizer(corpus: np.ndarray):
    """FAISS's 8-bit scalar quantizer trained on `corpus` (each dimension: its minimum to its maximum)."""
    import faiss

    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    quantizer = faiss.ScalarQuantizer(corpus.shape[1], faiss.ScalarQuantizer.QT_8bit)
    quantizer.train(corpus)
    return quantizer


def scoring_vectors(queries: np.ndarray, corpus: np.ndarray, fmt: VectorFormat) -> tuple[np.ndarray, np.ndarray]:
    """Float vectors whose inner products are the compact search's scores: `(queries', corpus')`.

    float32: the (truncated) vectors; int8: the queries and the corpus's decoded int8 codes; binary: sign vectors
    scaled by 1/sqrt(D), whose inner product is 1 - 2·hamming/D. Brute force over these equals the FAISS index
    of `make_index` (the tests check it), so the evaluation measures what a search returns.
    """
    queries, corpus = truncate(queries, fmt.dims), truncate(corpus, fmt.dims)
    if fmt.kind == "int8":
        quantizer = int8_quantizer(corpus)
        return queries, quantizer.decode(quantizer.compute_codes(corpus))
    if fmt.kind == "binary":
        scale = np.float32(1 / np.sqrt(corpus.shape[1]))
        return np.where(queries > 0, scale, -scale), np.where(corpus > 0, scale, -scale)
    return queries, corpus


def rescore(scores: np.ndarray, float_scores: np.ndarray, depth: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Scores [Q, N] after re-ranking each row's top `depth` by `float_scores`: those come first, in float order.

    The top `depth` are taken as a FAISS search returns them: by score, ties in column order. Others keep their
    compact scores, below every re-scored one (scores are cosines, in [-1, 1]). `valid` masks padding columns.
    """
    scores = np.asarray(scores, dtype=np.float64)
    masked = scores if valid is None else np.where(valid, scores, -np.inf)
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((columns, -masked), axis=-1)[:, :depth]
    top = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(top, order, True, axis=1)
    if valid is not None:
        top &= valid
    return np.where(top, 4.0 + np.asarray(float_scores, dtype=np.float64), scores)


def make_index(corpus: np.ndarray, fmt: VectorFormat, kind: str = "flat", nlist: int | None = None, nprobe: int = 32):
    """A FAISS index over `corpus` (unit vectors, [N, D]) in `fmt`: exact (`kind="flat"`) or IVF (`"ivf"`).

    float32: IndexFlatIP / IndexIVFFlat; int8: IndexScalarQuantizer / IndexIVFScalarQuantizer (8-bit, inner
    product); binary: IndexBinaryFlat / IndexBinaryIVF (hamming). IVF has `nlist` = 4·sqrt(N) lists by default
    (at most N/39: FAISS wants 39 training points a list) and searches `nprobe` of them.
    """
    import faiss

    corpus = truncate(corpus, fmt.dims)
    count, dimension = corpus.shape
    if kind not in ("flat", "ivf"):
        raise ValueError(f"index kind must be 'flat' or 'ivf', got {kind!r}")
    nlist = nlist or max(1, min(count // 39, int(4 * count**0.5)))
    inner_product = faiss.METRIC_INNER_PRODUCT
    if fmt.kind == "binary":
        if dimension % 8:
            raise ValueError(f"a binary index packs 8 values a byte: {dimension} dimensions is not a multiple of 8")
        corpus = binarize(corpus)
        index = faiss.IndexBinaryFlat(dimension)
        if kind == "ivf":
            index = faiss.IndexBinaryIVF(index, dimension, nlist)
    elif fmt.kind == "int8":
        qtype = faiss.ScalarQuantizer.QT_8bit
        if kind == "flat":
            index = faiss.IndexScalarQuantizer(dimension, qtype, inner_product)
        else:
            index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dimension), dimension, nlist, qtype, inner_product)
            index.by_residual = False  # codes of the vectors themselves (FAISS's default: of their residuals)
    elif kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, inner_product)
    if kind == "ivf":  # the lists are trained on a sample, 256 points a list
        index.train(corpus[np.random.default_rng(0).permutation(count)[: 256 * nlist]])
        if fmt.kind == "int8":
            # the int8 ranges must cover the whole corpus (FAISS trains an IVF encoder on 100,000 vectors at most),
            # and be those of the flat index and `scoring_vectors`
            quantizer = int8_quantizer(corpus)  # held: its `trained` is a view into it
            faiss.copy_array_to_vector(faiss.vector_to_array(quantizer.trained), index.sq.trained)
    elif not index.is_trained:  # int8: the ranges of the whole corpus
        index.train(corpus)
    index.add(corpus)
    if kind == "ivf":
        index.nprobe = min(nprobe, nlist)
    return index


def search(
    index, queries: np.ndarray, k: int, fmt: VectorFormat, float_corpus: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k], positions [Q, k]) of a `make_index` index; position -1 pads a short result.

    Scores are those `scoring_vectors` gives (binary: 1 - 2·hamming/D). With `fmt.rescore`, the top
    max(k, rescore) candidates are re-ranked by `float_corpus` (the full float vectors in index order; a memory
    map reads only those rows) and their scores are float cosines.
    """
    queries = np.asarray(queries, dtype=np.float32)
    compact = truncate(queries, fmt.dims)
    depth = max(k, fmt.rescore)
    if fmt.kind == "binary":
        distances, positions = index.search(binarize(compact), depth)
        scores = 1 - 2 * distances.astype(np.float32) / index.d
    else:
        scores, positions = index.search(compact, depth)
    if fmt.rescore:
        if float_corpus is None:
            raise ValueError(f"{fmt.label} needs the float vectors to re-score with")
        full = truncate(queries, None)
        for row, found in enumerate(positions):
            kept = found[found >= 0]
            rows = np.sort(kept)  # a memory map reads sorted rows front to back
            exact = (np.asarray(float_corpus[rows], dtype=np.float32) @ full[row])[np.searchsorted(rows, kept)]
            order = np.argsort(-exact, kind="stable")  # equal float scores keep the compact order
            positions[row, : len(kept)] = kept[order]
            scores[row, : len(kept)] = exact[order]
    return scores[:, :k], positions[:, :k]
