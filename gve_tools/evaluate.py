#!/usr/bin/env python
"""Evaluate a GVE checkpoint on a folder of retrieval datasets, UVRB-style: metrics per dataset and per ability.

A benchmark is a folder of datasets, one subfolder each (any folder with a `dataset.json`; an optional
`benchmark.json` at the top names the benchmark: {"name", "full_name", "dataset", "source_url"}, all optional).
A dataset folder holds:

- `dataset.json`: {"name": "TXT-synthetic", "abilities": ["TXT", "CG"], "ranking": "global" | "local",
  "metric": "R@1", "query_instruction": str | null, "document_instruction": str | null, "description": str}.
  `name`, `abilities` and `ranking` are required. `metric` is the dataset's main metric (default R@1), one of
  R@1, R@5, R@10, nDCG@5, nDCG@10, MRR. A null or absent `query_instruction` means GVE's QUERY_INSTRUCTION
  ("Find the video that matches the query."); a null or absent `document_instruction` means the checkpoint's
  default instruction (config `default_instruction`).
- `queries.jsonl` and `corpus.jsonl`: one item a line, {"id": str, "text": str, "image": path, "video": path,
  "instruction": str, "meta": any}. `id` and at least one of text/image/video are required; the item's modality
  is the set of those present (text, image, video, text+image, text+video, ...). `instruction` overrides the
  dataset's instruction for this item; `meta` is ignored. Media paths are relative to the dataset folder
  (absolute paths are allowed). Ids are unique within their file. Blank lines are skipped.
- `qrels.jsonl`: {"query_id": str, "doc_id": str, "relevance": int >= 0}. Relevance is graded: every value >= 1
  is relevant (R@k, MRR) and is its gain in nDCG; 0, or no line for the pair, is not relevant. Each query needs
  at least one relevant document; a pair appears once.
- `candidates.jsonl`, only with "ranking": "local": {"query_id": str, "doc_ids": [str, ...]}, one line per
  query. The query is ranked against its own candidates only (MMEB-style), which must include its relevant
  documents. With "global" ranking every query is ranked against the whole corpus.

Everything is checked before the model loads; an error names the file, the line and the field.

Metrics (numpy, per query, then averaged over the dataset's queries): R@1, R@5, R@10 with UVRB's convention,
hit@k (1 when any relevant document is in the top k); nDCG@5 and nDCG@10 with trec_eval's convention (linear
gains = relevance grades, discount 1/log2(rank + 1), ideal ranking from the query's qrels); MRR (1/rank of the
first relevant document). MMEB-V2's headline metrics are hit@1 (= R@1) and nDCG@5. A score is the dot product
of the L2-normalised embeddings. Ties are broken pessimistically and deterministically: among equal scores,
non-relevant documents rank before relevant ones, then lower grades before higher ones, then file order
(corpus.jsonl, or the candidate list) - so a model that gives everything one score gets no credit.

Per ability: the mean of the main metric over the datasets tagged with it. AVG: the mean over datasets of their
main metric (UVRB's overall average). Chance is the exact expected value of each metric under a uniformly random
ranking of the query's candidates (hit@k: 1 - C(n-r, k)/C(n, k) for n candidates of which r are relevant; MRR:
sum over i of P(first relevant at rank i)/i; nDCG@k: the mean gain times the first k discounts, over the ideal
DCG), averaged like the scores.

Embeddings are cached under --cache-dir, one .npy a distinct input, in a folder per checkpoint and settings.
The checkpoint key is the Hub commit for a model in the Hub cache, else a hash of the names, sizes and
modification times of the folder's files (README/*.md aside) - weights, config and remote code: content hashes
of multi-GB weights would cost more than many evaluations. The settings key holds dtype, device type and the
config's embedding settings (max_length, video and image controls, pooling token). An input's key holds its
fields, its effective instruction and, for each media file, its resolved path, size and modification time.
A re-run embeds only what changed. The results file (--output) is what `scripts/make_model_card.py --results`
reads; the per-dataset metrics and chance levels go beside it, in `<output stem>.details.json`.

    python scripts/evaluate.py BENCHMARK_DIR                              # the bundled tiny model, on the CPU
    python scripts/evaluate.py BENCHMARK_DIR --datasets TXT-synthetic --output build/eval/tiny.json
    python scripts/evaluate.py BENCHMARK_DIR --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16
"""

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.repo import ROOT
from gve_tools.text import docstring_parser

BUNDLED_MODEL = ROOT / "bundled" / "gve-tiny-synthetic"
DEFAULT_CACHE_DIR = Path("build/eval-cache")
DEFAULT_OUTPUT = Path("build/eval/results.json")
CACHE_VERSION = 1

METRICS = ("R@1", "R@5", "R@10", "nDCG@5", "nDCG@10", "MRR")
HIT_CUTOFFS = {"R@1": 1, "R@5": 5, "R@10": 10}
NDCG_CUTOFFS = {"nDCG@5": 5, "nDCG@10": 10}
DATASET_FIELDS = {
    "name": str,
    "abilities": list,
    "ranking": str,
    "metric": str,
    "query_instruction": (str, type(None)),
    "document_instruction": (str, type(None)),
    "description": str,
}
REQUIRED_DATASET_FIELDS = ("name", "abilities", "ranking")
ITEM_FIELDS = ("id", "text", "image", "video", "instruction", "meta")
MEDIA_FIELDS = ("image", "video")
CONTENT_FIELDS = ("text", "image", "video")
BENCHMARK_FIELDS = ("name", "full_name", "dataset", "source_url")

# UVRB's abilities, in its table's order, with their names and groups (as in model_card/uvrb_results.json).
UVRB_ABILITIES = {
    "TXT": ("Textual Video Retrieval", "query modality"),
    "CMP": ("Composed Video Retrieval", "query modality"),
    "VIS": ("Visual Video Retrieval", "query modality"),
    "CG": ("Coarse-Grained Video Retrieval", "domain"),
    "FG": ("Fine-Grained Video Retrieval", "domain"),
    "LC": ("Long-Context Video Retrieval", "domain"),
    "S": ("Spatial Video Retrieval", "fine-grained query"),
    "T": ("Temporal Video Retrieval", "fine-grained query"),
    "PR": ("Partially Relevant Video Retrieval", "fine-grained query"),
}
OVERALL = "AVG"


class EvaluationError(ValueError):
    """A bad benchmark, model or argument; the message names the file, line and field at fault."""


# --- the dataset format ---------------------------------------------------------------------------------------


@dataclass
class Item:
    """A query or document: its id, content fields (text, absolute media paths), instruction and origin."""

    id: str
    fields: dict[str, str]
    instruction: str | None  # the item's own instruction, if any
    origin: str  # "path:line", for error messages

    @property
    def modality(self) -> str:
        return "+".join(name for name in CONTENT_FIELDS if name in self.fields)


@dataclass
class Dataset:
    """A validated dataset: queries, corpus, graded qrels and (local ranking) per-query candidate doc ids."""

    folder: Path
    name: str
    abilities: list[str]
    ranking: str
    metric: str
    query_instruction: str | None
    document_instruction: str | None
    queries: list[Item]
    corpus: list[Item]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance >= 1}
    candidates: dict[str, list[str]] | None = None  # query id -> doc ids (local ranking only)
    description: str = ""
    modalities: dict[str, list[str]] = field(default_factory=dict)  # "queries"/"corpus" -> modalities present


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise EvaluationError(f"{path}: missing" if not path.exists() else f"{path} is not a file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EvaluationError(f"{path}: not valid JSON: {error}") from None


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    if not path.is_file():
        raise EvaluationError(f"{path}: missing" if not path.exists() else f"{path} is not a file")
    rows = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvaluationError(f"{path}:{number}: not valid JSON: {error}") from None
            if not isinstance(row, dict):
                raise EvaluationError(f"{path}:{number}: each line must be a JSON object, got {_describe(row)}")
            rows.append((number, row))
    if not rows:
        raise EvaluationError(f"{path}: has no lines")
    return rows


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _read_items(path: Path, folder: Path) -> list[Item]:
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        unknown = sorted(set(row) - set(ITEM_FIELDS))
        if unknown:
            raise EvaluationError(f"{where}: unknown field(s) {unknown} (fields: {list(ITEM_FIELDS)})")
        if not _nonempty_str(row.get("id")):
            raise EvaluationError(f"{where}: 'id' must be a non-empty string, got {_describe(row.get('id'))}")
        item_id = row["id"]
        if item_id in seen:
            raise EvaluationError(f"{where}: id {item_id!r} appears twice (first on line {seen[item_id]})")
        seen[item_id] = number
        if not any(name in row for name in CONTENT_FIELDS):
            raise EvaluationError(f"{where}: item {item_id!r} has none of 'text', 'image', 'video'")
        fields: dict[str, str] = {}
        for name in CONTENT_FIELDS:
            if name not in row:
                continue
            if not _nonempty_str(row[name]):
                raise EvaluationError(
                    f"{where}: item {item_id!r}: {name!r} must be a non-empty string, got {_describe(row[name])}"
                )
            value = row[name]
            if name in MEDIA_FIELDS:
                media = Path(value).expanduser()
                media = (media if media.is_absolute() else folder / media).resolve()
                if not media.is_file():
                    raise EvaluationError(f"{where}: item {item_id!r}: {name} file {value!r} not found ({media})")
                value = str(media)
            fields[name] = value
        instruction = row.get("instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise EvaluationError(
                f"{where}: item {item_id!r}: 'instruction' must be a string, got {_describe(instruction)}"
            )
        items.append(Item(item_id, fields, instruction, where))
    return items


def load_dataset(folder: str | Path) -> Dataset:
    """Read and validate one dataset folder; raises EvaluationError naming the file, line and field at fault."""
    folder = Path(folder)
    path = folder / "dataset.json"
    spec = _read_json(path)
    if not isinstance(spec, dict):
        raise EvaluationError(f"{path}: must be a JSON object, got {_describe(spec)}")
    unknown = sorted(set(spec) - set(DATASET_FIELDS))
    if unknown:
        raise EvaluationError(f"{path}: unknown field(s) {unknown} (fields: {list(DATASET_FIELDS)})")
    for name in REQUIRED_DATASET_FIELDS:
        if name not in spec:
            raise EvaluationError(f"{path}: missing field {name!r}")
    for name, kind in DATASET_FIELDS.items():
        if name in spec and (not isinstance(spec[name], kind) or isinstance(spec[name], bool)):
            raise EvaluationError(f"{path}: {name!r} has the wrong type: {_describe(spec[name])}")
    if not spec["name"].strip():
        raise EvaluationError(f"{path}: 'name' is empty")
    abilities = spec["abilities"]
    if not abilities or not all(_nonempty_str(a) and a.strip() == a and " " not in a for a in abilities):
        raise EvaluationError(f"{path}: 'abilities' must be a non-empty list of tags such as 'TXT', got {abilities!r}")
    if len(set(abilities)) != len(abilities):
        raise EvaluationError(f"{path}: 'abilities' lists a tag twice: {abilities!r}")
    if OVERALL in abilities:
        raise EvaluationError(f"{path}: 'abilities' cannot use {OVERALL!r}, the overall average's column")
    if spec["ranking"] not in ("global", "local"):
        raise EvaluationError(f"{path}: 'ranking' must be 'global' or 'local', got {spec['ranking']!r}")
    metric = spec.get("metric", "R@1")
    if metric not in METRICS:
        raise EvaluationError(f"{path}: 'metric' must be one of {list(METRICS)}, got {metric!r}")

    queries = _read_items(folder / "queries.jsonl", folder)
    corpus = _read_items(folder / "corpus.jsonl", folder)
    query_ids = {item.id for item in queries}
    doc_ids = {item.id for item in corpus}

    path = folder / "qrels.jsonl"
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        unknown = sorted(set(row) - {"query_id", "doc_id", "relevance"})
        if unknown:
            raise EvaluationError(f"{where}: unknown field(s) {unknown} (fields: query_id, doc_id, relevance)")
        for name, known, file in (("query_id", query_ids, "queries.jsonl"), ("doc_id", doc_ids, "corpus.jsonl")):
            if not _nonempty_str(row.get(name)):
                raise EvaluationError(f"{where}: {name!r} must be a non-empty string, got {_describe(row.get(name))}")
            if row[name] not in known:
                raise EvaluationError(f"{where}: {name} {row[name]!r} is not in {file}")
        relevance = row.get("relevance")
        if isinstance(relevance, bool) or not isinstance(relevance, int) or relevance < 0:
            raise EvaluationError(f"{where}: 'relevance' must be an integer >= 0, got {_describe(relevance)}")
        pair = (row["query_id"], row["doc_id"])
        if pair in seen:
            raise EvaluationError(f"{where}: the pair {pair} appears twice (first on line {seen[pair]})")
        seen[pair] = number
        if relevance > 0:
            qrels.setdefault(row["query_id"], {})[row["doc_id"]] = relevance

    candidates = None
    path = folder / "candidates.jsonl"
    if spec["ranking"] == "global" and path.exists():
        raise EvaluationError(f'{path}: candidates are only read with "ranking": "local" (this dataset: global)')
    if spec["ranking"] == "local":
        candidates = {}
        lines: dict[str, int] = {}
        for number, row in _read_jsonl(path):
            where = f"{path}:{number}"
            unknown = sorted(set(row) - {"query_id", "doc_ids"})
            if unknown:
                raise EvaluationError(f"{where}: unknown field(s) {unknown} (fields: query_id, doc_ids)")
            query = row.get("query_id")
            if not _nonempty_str(query):
                raise EvaluationError(f"{where}: 'query_id' must be a non-empty string, got {_describe(query)}")
            if query not in query_ids:
                raise EvaluationError(f"{where}: query_id {query!r} is not in queries.jsonl")
            if query in lines:
                raise EvaluationError(f"{where}: query {query!r} has candidates twice (first on line {lines[query]})")
            lines[query] = number
            docs = row.get("doc_ids")
            if not isinstance(docs, list) or not docs:
                raise EvaluationError(f"{where}: 'doc_ids' must be a non-empty list of doc ids, got {docs!r}")
            for doc in docs:
                if not isinstance(doc, str) or doc not in doc_ids:
                    raise EvaluationError(f"{where}: doc_ids: {doc!r} is not in corpus.jsonl")
            if len(set(docs)) != len(docs):
                twice = sorted({doc for doc in docs if docs.count(doc) > 1})
                raise EvaluationError(f"{where}: doc_ids lists {twice} more than once")
            outside = sorted(set(qrels.get(query, {})) - set(docs))
            if outside:
                raise EvaluationError(
                    f"{where}: query {query!r}: relevant doc(s) {outside} (qrels.jsonl) are not among its candidates"
                )
            candidates[query] = docs
        missing = [item for item in queries if item.id not in candidates]
        if missing:
            raise EvaluationError(
                f"{path}: query {missing[0].id!r} ({missing[0].origin}) has no candidates"
                + (f", nor {len(missing) - 1} other(s)" if len(missing) > 1 else "")
            )
    for item in queries:
        if not qrels.get(item.id):
            raise EvaluationError(
                f"{folder / 'qrels.jsonl'}: query {item.id!r} ({item.origin}) has no relevant document"
            )
    modalities = {
        part: sorted({item.modality for item in items}) for part, items in (("queries", queries), ("corpus", corpus))
    }
    return Dataset(
        folder=folder,
        name=spec["name"],
        abilities=list(abilities),
        ranking=spec["ranking"],
        metric=metric,
        query_instruction=spec.get("query_instruction"),
        document_instruction=spec.get("document_instruction"),
        queries=queries,
        corpus=corpus,
        qrels=qrels,
        candidates=candidates,
        description=spec.get("description", ""),
        modalities=modalities,
    )


def load_benchmark(folder: str | Path, names: list[str] | None = None) -> tuple[dict[str, str], list[Dataset]]:
    """The benchmark's description (name, full_name, dataset, source_url) and its datasets, sorted by name.

    `names` keeps only the datasets of those names (or folder names); an unknown name is an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(
            f"benchmark folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
        )
    info = {"name": folder.resolve().name}
    if (folder / "benchmark.json").exists():
        spec = _read_json(folder / "benchmark.json")
        if not isinstance(spec, dict) or set(spec) - set(BENCHMARK_FIELDS):
            raise EvaluationError(
                f"{folder / 'benchmark.json'}: must be an object with fields {list(BENCHMARK_FIELDS)}"
            )
        for name, value in spec.items():
            if not _nonempty_str(value):
                raise EvaluationError(f"{folder / 'benchmark.json'}: {name!r} must be a non-empty string")
        info.update(spec)
    info.setdefault("full_name", info["name"])
    info.setdefault("dataset", info["name"])
    info.setdefault("source_url", "scripts/evaluate.py")
    folders = sorted(path for path in folder.iterdir() if (path / "dataset.json").is_file())
    if not folders:
        raise EvaluationError(f"{folder}: no dataset folders (subfolders with a dataset.json)")
    if names:
        available = {}
        for path in folders:
            spec = _read_json(path / "dataset.json")
            available[spec.get("name") if isinstance(spec, dict) else None] = path
            available.setdefault(path.name, path)
        unknown = [name for name in names if name not in available]
        if unknown:
            known = sorted(str(name) for name in available if name)
            raise EvaluationError(f"--datasets: unknown dataset(s) {unknown} in {folder} (datasets: {known})")
        folders = sorted({available[name] for name in names})
    datasets = [load_dataset(path) for path in folders]
    seen: dict[str, Path] = {}
    for dataset in datasets:
        if dataset.name in seen:
            raise EvaluationError(
                f"{dataset.folder}: dataset name {dataset.name!r} is also used by {seen[dataset.name]}"
            )
        seen[dataset.name] = dataset.folder
    return info, sorted(datasets, key=lambda dataset: dataset.name)


# --- metrics ----------------------------------------------------------------------------------------------------


def rank_metrics(scores: np.ndarray, relevance: np.ndarray, valid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-query metrics of score matrices: {metric: [Q] values}, for METRICS.

    `scores` [Q, N] (higher is better), `relevance` [Q, N] graded judgments (>= 1 relevant, 0 not), `valid`
    [Q, N] which cells are candidates (default: all; padding for local ranking). Every query needs a relevant
    candidate. Ties: non-relevant first, then lower grades, then column order (see the module docstring).
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.int64)
    valid = np.ones(scores.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if np.isnan(scores[valid]).any():
        raise EvaluationError("a score is NaN (the model gave a NaN embedding)")
    relevance = np.where(valid, relevance, 0)
    columns = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    # np.lexsort: the last key is the primary one.
    order = np.lexsort((columns, relevance, -np.where(valid, scores, 0.0), ~valid), axis=-1)
    gains = np.take_along_axis(relevance, order, axis=1).astype(np.float64)
    relevant = gains > 0
    if not relevant.any(axis=1).all():
        raise EvaluationError("a query has no relevant candidate")
    out = {name: relevant[:, :k].any(axis=1).astype(np.float64) for name, k in HIT_CUTOFFS.items()}
    out["MRR"] = 1.0 / (relevant.argmax(axis=1) + 1.0)
    ideal = -np.sort(-relevance, axis=1).astype(np.float64)
    for name, k in NDCG_CUTOFFS.items():
        discounts = 1.0 / np.log2(np.arange(2, min(k, scores.shape[1]) + 2))
        dcg = gains[:, : len(discounts)] @ discounts
        idcg = ideal[:, : len(discounts)] @ discounts
        out[name] = dcg / idcg
    return {name: out[name] for name in METRICS}


@lru_cache(maxsize=4096)
def _chance_first_relevant(n: int, r: int) -> float:
    """E[1/rank of the first relevant] for r relevant among n, randomly ordered."""
    ranks = np.arange(1, n - r + 2, dtype=np.float64)
    # P(first relevant at rank i) = P(none in the first i-1) * r/(n-i+1)
    none_before = np.concatenate(([1.0], np.cumprod((n - r - ranks[:-1] + 1) / (n - ranks[:-1] + 1))))
    return float(np.sum(none_before * r / (n - ranks + 1) / ranks))


def _chance_hit(n: int, r: int, k: int) -> float:
    """1 - C(n-r, k)/C(n, k): a relevant document among the first k of a random order."""
    if k >= n:
        return 1.0
    miss = 1.0
    for i in range(k):
        miss *= max(n - r - i, 0) / (n - i)
    return 1.0 - miss


def chance_metrics(grades: list[int] | np.ndarray, n: int) -> dict[str, float]:
    """Exact expected metrics of one query under a uniformly random order of its n candidates.

    `grades` are the relevance grades (>= 1) of its relevant candidates; the others have 0.
    """
    grades = np.asarray(sorted((g for g in grades if g > 0), reverse=True), dtype=np.float64)
    r = len(grades)
    if not 1 <= r <= n:
        raise EvaluationError(f"chance needs 1 <= relevant ({r}) <= candidates ({n})")
    out = {name: _chance_hit(n, r, k) for name, k in HIT_CUTOFFS.items()}
    out["MRR"] = _chance_first_relevant(n, r)
    for name, k in NDCG_CUTOFFS.items():
        discounts = 1.0 / np.log2(np.arange(2, min(k, n) + 2))
        # each position holds each candidate with probability 1/n: E[gain at a position] = mean grade
        out[name] = float(grades.sum() / n * discounts.sum() / (grades[: len(discounts)] @ discounts[: len(grades)]))
    return {name: out[name] for name in METRICS}


# --- scoring a dataset ------------------------------------------------------------------------------------------


@dataclass
class DatasetResult:
    name: str
    abilities: list[str]
    ranking: str
    metric: str
    queries: int
    documents: int  # corpus size (global) or mean candidates per query (local, rounded)
    scores: dict[str, float]
    chance: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {
            "abilities": self.abilities,
            "ranking": self.ranking,
            "metric": self.metric,
            "queries": self.queries,
            "documents": self.documents,
            "score": self.scores[self.metric],
            "chance_level": self.chance[self.metric],
            "scores": self.scores,
            "chance": self.chance,
            "mmeb": {"hit@1": self.scores["R@1"], "nDCG@5": self.scores["nDCG@5"]},
        }


def score_dataset(
    dataset: Dataset, query_embeddings: np.ndarray, doc_embeddings: dict[str, np.ndarray], chunk_cells: int = 1 << 22
) -> DatasetResult:
    """Rank each query's candidates by dot product and average the metrics and their chance levels.

    `query_embeddings` [Q, D] in queries.jsonl order; `doc_embeddings` maps doc id -> [D] (only the ranked ones
    are needed). Queries are scored in chunks of about `chunk_cells` query x candidate cells.
    """
    from tqdm.auto import tqdm

    if dataset.ranking == "global":
        doc_ids = [item.id for item in dataset.corpus]
        candidates = [doc_ids] * len(dataset.queries)
    else:
        candidates = [dataset.candidates[item.id] for item in dataset.queries]
    ranked = sorted(
        {doc for docs in candidates for doc in docs}, key={d.id: i for i, d in enumerate(dataset.corpus)}.get
    )
    position = {doc: i for i, doc in enumerate(ranked)}
    docs = np.stack([doc_embeddings[doc] for doc in ranked]).astype(np.float32)
    queries = np.asarray(query_embeddings, dtype=np.float32)
    width = max(len(c) for c in candidates)
    step = max(1, chunk_cells // width)
    if dataset.ranking == "local":  # the candidates' embeddings are gathered per query: [step, width, D] floats
        step = max(1, min(step, chunk_cells * 16 // (width * docs.shape[1])))
    totals = dict.fromkeys(METRICS, 0.0)
    chance = dict.fromkeys(METRICS, 0.0)
    for start in tqdm(range(0, len(queries), step), desc=f"Scoring {dataset.name}", unit="chunk", leave=False):
        chunk = dataset.queries[start : start + step]
        relevance = np.zeros((len(chunk), width), dtype=np.int64)
        if dataset.ranking == "global":
            scores = queries[start : start + step] @ docs.T
            valid = None
            for row, item in enumerate(chunk):
                for doc, grade in dataset.qrels[item.id].items():
                    relevance[row, position[doc]] = grade
        else:
            index = np.zeros((len(chunk), width), dtype=np.int64)
            valid = np.zeros((len(chunk), width), dtype=bool)
            for row, item in enumerate(chunk):
                ids = candidates[start + row]
                index[row, : len(ids)] = [position[doc] for doc in ids]
                valid[row, : len(ids)] = True
                relevance[row, : len(ids)] = [dataset.qrels[item.id].get(doc, 0) for doc in ids]
            scores = np.einsum("qd,qcd->qc", queries[start : start + step], docs[index])
        for name, values in rank_metrics(scores, relevance, valid).items():
            totals[name] += float(values.sum())
        for row, item in enumerate(chunk):
            for name, value in chance_metrics(
                list(dataset.qrels[item.id].values()), len(candidates[start + row])
            ).items():
                chance[name] += value
    count = len(dataset.queries)
    return DatasetResult(
        name=dataset.name,
        abilities=dataset.abilities,
        ranking=dataset.ranking,
        metric=dataset.metric,
        queries=count,
        documents=round(sum(len(c) for c in candidates) / count),
        scores={name: totals[name] / count for name in METRICS},
        chance={name: chance[name] / count for name in METRICS},
    )


def summarise(results: list[DatasetResult]) -> dict[str, dict[str, Any]]:
    """{column: {"score", "chance", "datasets"}}: AVG over all datasets, then each ability (UVRB's order first)."""
    known = list(UVRB_ABILITIES)
    abilities: list[str] = []
    for result in results:
        abilities += [a for a in result.abilities if a not in abilities]
    first_seen = {ability: index for index, ability in enumerate(abilities)}
    abilities.sort(key=lambda a: (known.index(a) if a in known else len(known), first_seen[a]))
    summary = {}
    for column in [OVERALL, *abilities]:
        chosen = [r for r in results if column == OVERALL or column in r.abilities]
        summary[column] = {
            "score": float(np.mean([r.scores[r.metric] for r in chosen])),
            "chance": float(np.mean([r.chance[r.metric] for r in chosen])),
            "datasets": [r.name for r in chosen],
        }
    return summary


# --- the model and the embedding cache --------------------------------------------------------------------------


def resolve_model(model: str | Path | None) -> str:
    """The --model argument as from_pretrained takes it: an existing folder, or a Hub id; None is the bundled model."""
    if model is None:
        if not BUNDLED_MODEL.is_dir():
            raise EvaluationError(
                f"the bundled tiny model {BUNDLED_MODEL.relative_to(ROOT)} is missing from this checkout; "
                "pass --model PATH_OR_HUB_ID (e.g. Alibaba-NLP/GVE-3B)"
            )
        return str(BUNDLED_MODEL)
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise EvaluationError(f"--model {text!r}: no such checkpoint folder (a Hub id looks like 'owner/name')")
    return text


def _stat_digest(folder: Path) -> str:
    """A hash of the names, sizes and modification times of a folder's files (Markdown and hidden files aside)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.suffix == ".md" or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{relative.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def checkpoint_identity(model_id: str, revision: str | None = None, config: Any = None) -> dict[str, str]:
    """{"model", "folder", "weights"}: where the checkpoint's files are and what identifies their contents.

    A Hub model is identified by the commit of its snapshot in the Hub cache ("commit:<sha>"), a local folder by
    `_stat_digest` ("stat:<sha256>").
    """
    if Path(model_id).is_dir():
        folder = Path(model_id).resolve()
        return {"model": model_id, "folder": str(folder), "weights": "stat:" + _stat_digest(folder)}
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if isinstance(config, str):
        snapshot = Path(config).parent
        return {"model": model_id, "folder": str(snapshot), "weights": "commit:" + snapshot.name}
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return {"model": model_id, "folder": model_id, "weights": "commit:" + commit}
    raise EvaluationError(f"cannot find {model_id!r} (revision {revision}) in the Hub cache to key the embedding cache")


def load_config(model_id: str, revision: str | None) -> Any:
    """The checkpoint's GVEConfig (its embedding settings, as the processor reads them), without the weights."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_id, trust_remote_code=True, revision=revision)
    except OSError as error:  # not found, not in the cache while offline, no access
        raise EvaluationError(f"cannot load --model {model_id!r}: {error}") from error


def embedding_settings(config: Any, dtype: str, device: str) -> dict[str, Any]:
    """What besides the checkpoint and the input changes an embedding: dtype, device type, the config's settings."""
    return {
        "dtype": dtype,
        "device": device.split(":")[0],
        "max_length": config.max_length,
        "video": config.video_options(),
        "image": config.image_options(),
        "pooling_token_id": config.pooling_token_id,
    }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def encoder_input(item: Item, instruction: str) -> dict[str, str]:
    """The dict `model.encode` takes for an item, with its effective instruction."""
    return {**item.fields, "instruction": item.instruction if item.instruction is not None else instruction}


def input_key(payload: dict[str, str]) -> str:
    """The cache key of an encoder input: its fields and instruction, and each media file's path, size and mtime."""
    described = dict(payload)
    for name in MEDIA_FIELDS:
        if name in payload:
            stat = os.stat(payload[name])
            described[name] = [payload[name], stat.st_size, stat.st_mtime_ns]
    return _digest(described)


class EmbeddingCache:
    """One float32 .npy per input key under `folder` (= cache_dir/<checkpoint and settings key>); None: no cache."""

    def __init__(self, folder: Path | None, description: dict[str, Any] | None = None):
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            if description is not None and not (folder / "key.json").exists():
                (folder / "key.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        if self.folder is None or not self._path(key).is_file():
            return None
        try:
            return np.load(self._path(key))
        except (OSError, ValueError):  # a torn or foreign file: recompute it
            return None

    def put(self, key: str, embedding: np.ndarray) -> None:
        if self.folder is None:
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            np.save(file, np.asarray(embedding, dtype=np.float32))
        os.replace(temporary, path)


def embed_all(
    load: Any, requests: dict[str, tuple[dict[str, str], list[str]]], cache: EmbeddingCache, batch_size: int
) -> dict[str, np.ndarray]:
    """Embeddings of {key: (encoder input, origins)}: from the cache, else by the model (then cached as they come).

    `load()` gives the model; it is called only when some embedding is not in the cache.

    Inputs the model cannot embed are all reported at once, with their file and line.
    """
    out: dict[str, np.ndarray] = {}
    missing = []
    for key in requests:
        found = cache.get(key)
        if found is None:
            missing.append(key)
        else:
            out[key] = found
    print(f"embeddings: {len(out)} cached, {len(missing)} to compute", flush=True)
    if not missing:
        return out
    failures = []
    stream = load().encode_stream(
        [requests[key][0] for key in missing], batch_size=batch_size, show_progress_bar=True, on_error="skip"
    )
    for index, output in stream:
        key = missing[index]
        if isinstance(output, Exception):
            origins = requests[key][1]
            also = f" (also {'; '.join(origins[1:3])}{', ...' if len(origins) > 3 else ''})" if len(origins) > 1 else ""
            reason = re.sub(r"^inputs\[\d+\]: ", "", str(output))
            failures.append(f"{origins[0]}{also}: {reason}")
            continue
        embedding = output.float().numpy()
        cache.put(key, embedding)
        out[key] = embedding
    if failures:
        more = f"\n... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise EvaluationError(f"{len(failures)} input(s) could not be embedded:\n" + "\n".join(failures[:10]) + more)
    return out


def load_model(model_id: str, revision: str | None, device: str, dtype: str):
    import torch
    from transformers import AutoModel

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    try:
        model = AutoModel.from_pretrained(model_id, trust_remote_code=True, revision=revision, dtype=dtypes[dtype])
    except OSError as error:  # not found, not in the cache while offline, no access
        raise EvaluationError(f"cannot load --model {model_id!r}: {error}") from error
    return model.to(device).eval()


def count_parameters(folder: str | Path) -> str | None:
    """The checkpoint's parameter count as the card writes it (8.3B, 3.8B, 1.2M, 950K), from its safetensors headers.

    Every tensor of the files counts, lm_head included (as the published 8.3B of GVE-7B does); None when the
    folder has no safetensors files.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as file:
            header = json.loads(file.read(int.from_bytes(file.read(8), "little")))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if total >= scale:
            return f"{total / scale:.1f}{suffix}"
    return str(total)


# --- the run ----------------------------------------------------------------------------------------------------


def results_files(
    info: dict[str, str],
    results: list[DatasetResult],
    summary: dict[str, dict[str, Any]],
    model_name: str,
    params: str | None,
    provenance: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the results file make_model_card.py reads, the details file: per-dataset metrics and chance levels)."""
    counts = {m: sum(r.metric == m for r in results) for m in METRICS if any(r.metric == m for r in results)}
    used = ", ".join(f"{m} on {n} dataset{'s' if n > 1 else ''}" for m, n in counts.items())
    columns = []
    for key in summary:
        name, group = ("Overall average", "overall") if key == OVERALL else UVRB_ABILITIES.get(key, (key, "ability"))
        columns.append({"key": key, "name": name, "group": group})
    card = {
        "source": (
            f"scripts/evaluate.py on the local benchmark {info['name']} ({len(results)} datasets): model "
            f"{_shown(provenance['model'])}{'@' + provenance['revision'] if provenance['revision'] else ''}, "
            f"{provenance['settings']['dtype']} on {provenance['settings']['device']}."
        ),
        "benchmark": {
            "name": info["name"],
            "full_name": info["full_name"],
            "dataset": info["dataset"],
            "num_datasets": len(results),
            "task_type": "video-retrieval",
            "task_name": "Video Retrieval",
            "overall_column": OVERALL,
            "source_name": "scripts/evaluate.py",
            "source_url": info["source_url"],
            "metric": f"the main metric of each dataset ({used}), averaged per ability; AVG averages the datasets",
            "decimals": 3,
        },
        "columns": columns,
        "models": [
            {
                "name": model_name,
                "params": params,
                "ours": True,
                "scores": {key: round(value["score"], 6) for key, value in summary.items()},
            }
        ],
    }
    details = {
        "benchmark": info,
        "model": {"name": model_name, "params": params, **provenance},
        "conventions": {
            "R@k": "hit@k: 1 when any relevant document is in the top k (UVRB); hit@1 (MMEB) = R@1",
            "nDCG@k": "trec_eval: linear gains (relevance grades), 1/log2(rank+1) discount, ideal from qrels",
            "ties": "non-relevant before relevant, lower grades first, then file order",
            "chance": "exact expectation under a uniformly random ranking of each query's candidates",
        },
        "summary": summary,
        "datasets": {r.name: r.as_json() for r in results},
    }
    return card, details


def _shown(model: str) -> str:
    """A model folder as the results file shows it: relative to the repository or the current folder if inside."""
    path = Path(model)
    if not path.is_absolute():
        return model
    for base in (ROOT, Path.cwd()):
        if path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
    return model


def format_tables(results: list[DatasetResult], summary: dict[str, dict[str, Any]]) -> str:
    """The terminal report: a table of datasets (every metric, the main one with its chance), then of abilities."""
    name_width = max(12, *(len(r.name) for r in results))
    head = (
        f"{'dataset':<{name_width}}  {'abilities':<14} {'ranking':<7} {'queries':>7} {'docs':>6}  "
        + " ".join(f"{m:>7}" for m in METRICS)
        + f"  {'main':>7} {'score':>6} {'chance':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.name:<{name_width}}  {','.join(r.abilities):<14} {r.ranking:<7} {r.queries:>7} {r.documents:>6}  "
            + " ".join(f"{r.scores[m]:>7.3f}" for m in METRICS)
            + f"  {r.metric:>7} {r.scores[r.metric]:>6.3f} {r.chance[r.metric]:>6.3f}"
        )
    lines.append("(docs: the corpus, or the mean number of candidates with local ranking; R@1 is MMEB's hit@1)")
    lines += ["", f"{'ability':<8} {'score':>6} {'chance':>6}  datasets", "-" * 40]
    for key, value in summary.items():
        lines.append(f"{key:<8} {value['score']:>6.3f} {value['chance']:>6.3f}  {', '.join(value['datasets'])}")
    return "\n".join(lines)


def evaluate(
    benchmark: str | Path,
    model: str | None = None,
    *,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 16,
    datasets: list[str] | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    output: str | Path | None = DEFAULT_OUTPUT,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on the benchmark folder; prints the tables, writes `output` and its details file.

    `cache_dir=None` turns the embedding cache off. Returns the details (see `results_files`).
    """
    import torch
    from tqdm.auto import tqdm

    from gve_tools.repo import query_instruction

    QUERY_INSTRUCTION = query_instruction()

    info, chosen = load_benchmark(benchmark, datasets)
    model_id = resolve_model(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    config = load_config(model_id, revision)
    identity = checkpoint_identity(model_id, revision, config)
    settings = embedding_settings(config, dtype, device)
    cache = EmbeddingCache(
        Path(cache_dir) / _digest({"v": CACHE_VERSION, "weights": identity["weights"], **settings})[:24]
        if cache_dir is not None
        else None,
        {"checkpoint": identity, "settings": settings, "version": CACHE_VERSION},
    )
    default_instruction = config.default_instruction

    # every input of every dataset, keyed; identical inputs (a corpus shared by datasets) are embedded once
    requests: dict[str, tuple[dict[str, str], list[str]]] = {}
    keys: dict[str, tuple[list[str], dict[str, str]]] = {}
    for dataset in chosen:
        query_instruction = dataset.query_instruction if dataset.query_instruction is not None else QUERY_INSTRUCTION
        document_instruction = (
            dataset.document_instruction if dataset.document_instruction is not None else default_instruction
        )
        if dataset.ranking == "local":
            needed = {doc for docs in dataset.candidates.values() for doc in docs}
            documents = [item for item in dataset.corpus if item.id in needed]
        else:
            documents = dataset.corpus
        query_keys, doc_keys = [], {}
        for items, instruction, sink in (
            (dataset.queries, query_instruction, None),
            (documents, document_instruction, doc_keys),
        ):
            for item in items:
                payload = encoder_input(item, instruction)
                key = input_key(payload)
                requests.setdefault(key, (payload, []))[1].append(f"{dataset.name}: {item.origin} (id {item.id!r})")
                if sink is None:
                    query_keys.append(key)
                else:
                    sink[item.id] = key
        keys[dataset.name] = (query_keys, doc_keys)

    # the weights load only when an embedding is missing from the cache
    embeddings = embed_all(lambda: load_model(model_id, revision, device, dtype), requests, cache, batch_size)
    results = []
    for dataset in tqdm(chosen, desc="Evaluating", unit="dataset"):
        query_keys, doc_keys = keys[dataset.name]
        results.append(
            score_dataset(
                dataset,
                np.stack([embeddings[key] for key in query_keys]),
                {doc: embeddings[key] for doc, key in doc_keys.items()},
            )
        )
    summary = summarise(results)
    name = model_name or Path(model_id.rstrip("/")).name
    provenance = {
        "model": identity["model"],
        "revision": revision,
        "weights": identity["weights"],
        "settings": settings,
    }
    card, details = results_files(info, results, summary, name, count_parameters(identity["folder"]), provenance)

    print(f"\n{name} on {info['name']} ({len(results)} datasets; score = main metric, chance = random ranking)")
    print(format_tables(results, summary))
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        details_path = details_file(output)
        details_path.write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {output} (for scripts/make_model_card.py --results) and {details_path}")
    return details


def details_file(output: str | Path) -> Path:
    """Where the per-dataset details of a results file go: `results.json` -> `results.details.json`."""
    output = Path(output)
    return output.with_name(output.stem + ".details.json")


def build_parser() -> argparse.ArgumentParser:
    parser = docstring_parser(__doc__, "evaluate.py", "exit status: 0 done; 2 bad arguments, benchmark or inputs.")
    parser.add_argument("benchmark", type=Path, metavar="BENCHMARK_DIR", help="folder of dataset folders (see above)")
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH_OR_HUB_ID",
        help=f"checkpoint folder or Hub id (default: the bundled tiny model, {BUNDLED_MODEL.relative_to(ROOT)})",
    )
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of --model (default: main)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=None,
        help="weights' dtype (default: bfloat16 on cuda, float32 on cpu)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="most inputs per forward pass (default: 16)")
    parser.add_argument(
        "--datasets", nargs="+", default=None, metavar="NAME", help="evaluate only these datasets (name or folder)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help=f"embedding cache (default: {DEFAULT_CACHE_DIR})"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="JSON",
        help=f"results file for make_model_card.py --results, details beside it (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--model-name",
        default=None,
        help="the model's name in the results (default: the last part of --model); "
        "make_model_card.py --model-id owner/NAME picks this row",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        evaluate(
            args.benchmark,
            args.model,
            revision=args.revision,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            datasets=args.datasets,
            cache_dir=None if args.no_cache else args.cache_dir,
            output=args.output,
            model_name=args.model_name,
        )
    except EvaluationError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
