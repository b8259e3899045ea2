"""Compact corpus vectors: what float32, int8 and binary indexes (and re-scoring) cost and find at GVE's dimensions.

For GVE-3B (2048 dimensions) and GVE-7B (3584), over N synthetic unit vectors, each format's flat FAISS index (as
`gve_tools.corpus.index` builds it, through `gve_tools.vectors`) is measured: bytes a vector, the index's size on
disk, build time, search time a query (a batch of queries, top k, on FAISS's threads) and recall@k against exact
float search. A re-scored format re-ranks the top `rescore` by the float vectors, read from a float16 `.npy` memory
map as a corpus index does (warm in the page cache). The size and the compact search of a flat index grow linearly
with N, and re-scoring's cost does not depend on N, so the figures at 1M vectors are those at N scaled so.

The vectors stand in for embeddings: a shared direction (random pairs' cosine about 0.17), a 64-dimensional signal
and noise; each query is a noisy copy of a corpus vector. The recall is indicative of the formats' ranking, not
of GVE's: `scripts/evaluate.py --vectors` measures that on real datasets.

    python scripts/benchmark_vectors.py --output benchmarks/vector-index.json
    python scripts/benchmark_vectors.py --n 20000 --dimensions 2048        # a quick look
"""

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.benchmark.process import peak_rss_mb
from gve_tools.vectors import VectorFormat, make_index, search

MODELS = {2048: "GVE-3B", 3584: "GVE-7B"}
FORMATS = ("float32", "int8", "int8+rescore100", "binary", "binary+rescore100")
DEFAULT_N = 200_000  # 6.5 GB at peak for 3584 dimensions (see benchmark_vectors)
MILLION = 1_000_000
SIGNAL_RANK = 64


def parse_format(label: str) -> VectorFormat:
    """`float32`, `int8`, `binary`, `int8+rescore100`, ... as a VectorFormat."""
    kind, _, rescore = label.partition("+rescore")
    return VectorFormat(kind, rescore=int(rescore or 0))


def synthetic_corpus(n: int, dimension: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(queries [Q, D], corpus [N, D]): unit float32 vectors with a shared direction, a low-rank signal and noise,
    the queries noisy copies of random corpus vectors (in the signal and the noise). Made in blocks, so that the
    corpus is the only large array."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dimension, SIGNAL_RANK)))[0].T.astype(np.float32)  # orthonormal rows
    shared = rng.standard_normal(dimension).astype(np.float32)
    shared *= 0.5 / np.linalg.norm(shared)

    def vectors(latent: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal((len(latent), dimension), dtype=np.float32) * np.float32(0.5 / dimension**0.5)
        made = latent @ basis + shared + noise
        return made / np.linalg.norm(made, axis=1, keepdims=True)

    latents = rng.standard_normal((n, SIGNAL_RANK), dtype=np.float32) / np.float32(SIGNAL_RANK**0.5)
    corpus = np.empty((n, dimension), dtype=np.float32)
    for start in range(0, n, 16384):
        corpus[start : start + 16384] = vectors(latents[start : start + 16384])
    sources = rng.choice(n, queries, replace=False)
    noise = rng.standard_normal((queries, SIGNAL_RANK), dtype=np.float32) * np.float32(0.5 / SIGNAL_RANK**0.5)
    return vectors(latents[sources] + noise), corpus


def exact_top_k(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """Positions [Q, k] of the exact float search (the reference of recall@k)."""
    scores = queries @ corpus.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _index_bytes(index, kind: str, folder: Path) -> int:
    import faiss

    path = folder / "index.faiss"
    (faiss.write_index_binary if kind == "binary" else faiss.write_index)(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def _float_copy(corpus: np.ndarray, folder: Path) -> np.ndarray:
    """The corpus as the float16 `.npy` a compact index keeps beside it, memory-mapped (written in blocks)."""
    path = folder / "vectors.npy"
    stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=corpus.shape)
    for start in range(0, len(corpus), 16384):
        stored[start : start + 16384] = corpus[start : start + 16384]
    stored.flush()
    del stored
    return np.load(path, mmap_mode="r")


def measure_dimension(
    dimension: int, n: int, formats: list[VectorFormat], queries: int, k: int, repeats: int, folder: Path
) -> list[dict[str, Any]]:
    """Each format's figures at one dimension: one index a kind (re-scored formats search the same one), all built
    first, then timed in `repeats` rounds of every search once, the best kept: a burst of other work on the machine
    spoils a round of each format rather than every run of one."""
    query_vectors, corpus = synthetic_corpus(n, dimension, queries)
    exact = exact_top_k(query_vectors, corpus, k)
    float_copy = _float_copy(corpus, folder) if any(fmt.rescore for fmt in formats) else None
    indexes, build_s, sizes = {}, {}, {}
    for kind in dict.fromkeys(fmt.kind for fmt in formats):
        start = time.perf_counter()
        indexes[kind] = make_index(corpus, VectorFormat(kind))
        build_s[kind] = time.perf_counter() - start
        sizes[kind] = _index_bytes(indexes[kind], kind, folder)
    del corpus
    # a re-scored search is also timed without its re-scoring (the compact search of its depth): the difference is
    # the re-scoring's time, which does not grow with N
    searches = {}
    for fmt in formats:
        searches[fmt.label] = partial(search, indexes[fmt.kind], query_vectors, k, fmt, float_copy)
        if fmt.rescore:
            compact = VectorFormat(fmt.kind)
            searches[f"{fmt.label} compact"] = partial(
                search, indexes[fmt.kind], query_vectors, max(k, fmt.rescore), compact
            )
    positions = {label: run()[1] for label, run in searches.items()}  # also the warm-up
    best = dict.fromkeys(searches, float("inf"))
    for _ in range(repeats):
        for label, run in searches.items():
            best[label] = min(best[label], _seconds(run) * 1000 / queries)
    rows = []
    for fmt in formats:
        compact_ms = best.get(f"{fmt.label} compact", best[fmt.label])
        rescore_ms = max(0.0, best[fmt.label] - compact_ms)
        found = [len(set(row) & set(reference)) / k for row, reference in zip(positions[fmt.label], exact, strict=True)]
        rows.append(
            {
                "model": MODELS.get(dimension, f"{dimension} dimensions"),
                "dimension": dimension,
                "vectors": fmt.label,
                "bytes_per_vector": fmt.bytes_per_vector(dimension),
                "index_bytes": sizes[fmt.kind],
                "float_copy_bytes": 2 * dimension * n if fmt.rescore else 0,
                "build_s": round(build_s[fmt.kind], 3),
                "search_ms_per_query": round(compact_ms + rescore_ms, 3),
                "rescore_ms_per_query": round(rescore_ms, 3),
                f"recall_at_{k}": round(float(np.mean(found)), 4),
                "per_1m": {
                    "index_bytes": round(sizes[fmt.kind] * MILLION / n),
                    "float_copy_bytes": 2 * dimension * MILLION if fmt.rescore else 0,
                    "search_ms_per_query": round(compact_ms * MILLION / n + rescore_ms, 2),
                },
            }
        )
    return rows


def benchmark_vectors(
    n: int = DEFAULT_N,
    dimensions: tuple[int, ...] = (2048, 3584),
    formats: tuple[str, ...] = FORMATS,
    queries: int = 64,
    k: int = 10,
    repeats: int = 5,
) -> dict[str, Any]:
    """The figures of every format at every dimension, with the machine and how they scale to 1M vectors.

    Peak memory is about 9.1·N·D bytes (the float32 corpus, and its three indexes: 4 + 1 + 1/8 bytes a value):
    6.5 GB at N = 200,000, D = 3584.
    """
    import faiss

    parsed = [parse_format(label) for label in formats]
    started, load = time.perf_counter(), os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gve-vectors-") as folder:
        for dimension in dimensions:
            rows += measure_dimension(dimension, n, parsed, queries, k, repeats, Path(folder))
    command = ["python", "scripts/benchmark_vectors.py", "--n", str(n), "--dimensions", *map(str, dimensions)]
    command += ["--formats", *formats, "--queries", str(queries), "--k", str(k), "--repeats", str(repeats)]
    return {
        "command": shlex.join(command),
        "machine": {
            "cpu_cores": os.cpu_count(),
            "faiss_threads": faiss.omp_get_max_threads(),
            "faiss": faiss.__version__,
            "faiss_compile_options": faiss.get_compile_options(),
            "numpy": np.__version__,
            "processor": platform.processor() or platform.machine(),
            "load_average_1min": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
        },
        "n": n,
        "queries": queries,
        "k": k,
        "index": "flat (exact) FAISS indexes of gve_tools.vectors.make_index; IVF not measured",
        "data": "synthetic unit vectors: a shared direction (random pairs' cosine ~0.17), a 64-dimensional signal "
        "and noise; queries are noisy copies of corpus vectors; recall is against exact float32 search",
        "timing": f"the best of {repeats} rounds of every search after a warm-up (the least disturbed by other work "
        f"on the machine), the batch of {queries} queries at once, per query; re-scoring reads a float16 .npy "
        "memory map already in the page cache",
        "scaling": f"per_1m: index size and the flat compact search grow linearly with N (measured at N = {n:,}, "
        "times 1,000,000/N); re-scoring's time does not depend on N and is added as measured",
        "results": rows,
        "peak_rss_mb": round(peak_rss_mb()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def report(result: dict[str, Any]) -> str:
    """The figures as a Markdown table, and what they were measured on."""
    k, n = result["k"], result["n"]
    lines = [
        f"| model | vectors | bytes/vector | index at {n:,} | index per 1M | float copy per 1M | build s | "
        f"search ms/query at {n:,} | search ms/query per 1M | recall@{k} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["results"]:
        per_1m = row["per_1m"]
        copy = f"{per_1m['float_copy_bytes'] / 1e9:.2f} GB" if per_1m["float_copy_bytes"] else "-"
        lines.append(
            f"| {row['model']} ({row['dimension']}) | {row['vectors']} | {row['bytes_per_vector']:g} | "
            f"{row['index_bytes'] / 1e6:,.0f} MB | {per_1m['index_bytes'] / 1e9:.2f} GB | {copy} | "
            f"{row['build_s']:.2f} | {row['search_ms_per_query']:.2f} | {per_1m['search_ms_per_query']:.1f} | "
            f"{row[f'recall_at_{k}']:.3f} |"
        )
    machine = result["machine"]
    lines += [
        "",
        f"{machine['cpu_cores']} CPU cores, FAISS {machine['faiss']} on {machine['faiss_threads']} threads; "
        f"{result['queries']} queries, top {k}; peak RSS {result['peak_rss_mb']:,} MB; {result['seconds']:.0f} s.",
        f"Timing: {result['timing']}.",
        f"Scaling: {result['scaling']}.",
        f"Data: {result['data']}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help=f"corpus vectors (default {DEFAULT_N:,})")
    parser.add_argument(
        "--dimensions", type=int, nargs="+", default=[2048, 3584], help="default: 2048 (GVE-3B) 3584 (GVE-7B)"
    )
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), help=f"default: {' '.join(FORMATS)}")
    parser.add_argument("--queries", type=int, default=64, help="queries in the searched batch (default 64)")
    parser.add_argument("--k", type=int, default=10, help="results a query, and the recall's k (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed searches, the best reported (default 5)")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    try:
        for label in args.formats:
            parse_format(label)
    except ValueError as error:
        parser.error(f"--formats: {error}")
    if args.n <= args.k:
        parser.error("--n must be larger than --k")
    result = benchmark_vectors(args.n, tuple(args.dimensions), tuple(args.formats), args.queries, args.k, args.repeats)
    text = report(result)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({**result, "report": text}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
