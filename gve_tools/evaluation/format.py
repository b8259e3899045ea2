"""The benchmark format: a folder of dataset folders, each read and checked completely before any model loads.

A dataset folder holds dataset.json, queries.jsonl, corpus.jsonl, qrels.jsonl and, with local ranking,
candidates.jsonl; the format is specified in the command's help (`gve_tools.evaluation.cli`). Every error names
the file, the line and the field at fault.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gve_tools.errors import GVEToolsError
from gve_tools.text import describe

# The metrics a dataset can choose as its main one (the order of every table).
METRICS = ("R@1", "R@5", "R@10", "nDCG@5", "nDCG@10", "MRR")
# A moment dataset's too: its top segment's temporal IoU with the relevant span is at least 0.5 or 0.7, and its mean.
MOMENT_METRICS = ("R@1,IoU=0.5", "R@1,IoU=0.7", "mIoU")
OVERALL = "AVG"  # the overall average's column, which no ability may be called
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


class EvaluationError(GVEToolsError, ValueError):
    """A bad benchmark, model or argument; the message names the file, line and field at fault."""


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
    moments: dict[str, dict[str, list[tuple[float, float]]]] | None = None  # query id -> {doc id: relevant spans}
    description: str = ""
    modalities: dict[str, list[str]] = field(default_factory=dict)  # "queries"/"corpus" -> modalities present


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
                raise EvaluationError(f"{path}:{number}: each line must be a JSON object, got {describe(row)}")
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
            raise EvaluationError(f"{where}: 'id' must be a non-empty string, got {describe(row.get('id'))}")
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
                    f"{where}: item {item_id!r}: {name!r} must be a non-empty string, got {describe(row[name])}"
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
                f"{where}: item {item_id!r}: 'instruction' must be a string, got {describe(instruction)}"
            )
        items.append(Item(item_id, fields, instruction, where))
    return items


def _read_spec(path: Path) -> dict[str, Any]:
    """dataset.json, checked: its fields, their types, the abilities, the ranking and the metric."""
    spec = _read_json(path)
    if not isinstance(spec, dict):
        raise EvaluationError(f"{path}: must be a JSON object, got {describe(spec)}")
    unknown = sorted(set(spec) - set(DATASET_FIELDS))
    if unknown:
        raise EvaluationError(f"{path}: unknown field(s) {unknown} (fields: {list(DATASET_FIELDS)})")
    for name in REQUIRED_DATASET_FIELDS:
        if name not in spec:
            raise EvaluationError(f"{path}: missing field {name!r}")
    for name, kind in DATASET_FIELDS.items():
        if name in spec and (not isinstance(spec[name], kind) or isinstance(spec[name], bool)):
            raise EvaluationError(f"{path}: {name!r} has the wrong type: {describe(spec[name])}")
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
    if metric not in (*METRICS, *MOMENT_METRICS):
        raise EvaluationError(f"{path}: 'metric' must be one of {[*METRICS, *MOMENT_METRICS]}, got {metric!r}")
    return spec


def _read_span(row: dict, where: str) -> tuple[float, float] | None:
    """A qrels row's moment, (start, end) in seconds, or None when it has neither key."""
    if "start" not in row and "end" not in row:
        return None
    span = row.get("start"), row.get("end")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf") for v in span):
        raise EvaluationError(f"{where}: 'start' and 'end' must both be seconds >= 0, got {span[0]!r} and {span[1]!r}")
    if span[1] <= span[0]:
        raise EvaluationError(f"{where}: 'end' ({span[1]!r}) must be after 'start' ({span[0]!r})")
    return float(span[0]), float(span[1])


def _read_qrels(
    path: Path, query_ids: set[str], corpus: dict[str, Item]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, list[tuple[float, float]]]] | None]:
    """qrels.jsonl as {query id: {doc id: relevance >= 1}} (judgments of 0 are left out), and the moments:
    {query id: {doc id: spans}} when the rows carry start and end (all of them must then), else None.

    A (query, doc) pair appears once, or once per span for moments.
    """
    qrels: dict[str, dict[str, int]] = {}
    moments: dict[str, dict[str, list[tuple[float, float]]]] = {}
    seen: dict[tuple, int] = {}
    spanned = None  # whether the rows carry spans, as the first one says
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        unknown = sorted(set(row) - {"query_id", "doc_id", "relevance", "start", "end"})
        if unknown:
            raise EvaluationError(
                f"{where}: unknown field(s) {unknown} (fields: query_id, doc_id, relevance, start, end)"
            )
        span = _read_span(row, where)
        if spanned is None:
            spanned = span is not None
        elif spanned != (span is not None):
            raise EvaluationError(
                f"{where}: {'no' if spanned else 'a'} moment ('start', 'end') here, but "
                f"{'every' if spanned else 'no'} line before has one: a dataset's qrels all have moments or none do"
            )
        for name, known, file in (("query_id", query_ids, "queries.jsonl"), ("doc_id", corpus, "corpus.jsonl")):
            if not _nonempty_str(row.get(name)):
                raise EvaluationError(f"{where}: {name!r} must be a non-empty string, got {describe(row.get(name))}")
            if row[name] not in known:
                raise EvaluationError(f"{where}: {name} {row[name]!r} is not in {file}")
        relevance = row.get("relevance")
        if isinstance(relevance, bool) or not isinstance(relevance, int) or relevance < 0:
            raise EvaluationError(f"{where}: 'relevance' must be an integer >= 0, got {describe(relevance)}")
        pair = (row["query_id"], row["doc_id"], *((span,) if span else ()))
        if pair in seen:
            what = "the pair" if span is None else "the moment"
            raise EvaluationError(f"{where}: {what} {pair} appears twice (first on line {seen[pair]})")
        seen[pair] = number
        if span is not None and "video" not in corpus[row["doc_id"]].fields:
            raise EvaluationError(f"{where}: doc {row['doc_id']!r} has a moment but no video")
        if relevance > 0:
            if span is not None and qrels.get(row["query_id"], {}).get(row["doc_id"], relevance) != relevance:
                raise EvaluationError(f"{where}: the moments of one query in one video need one relevance")
            qrels.setdefault(row["query_id"], {})[row["doc_id"]] = relevance
            if span is not None:
                moments.setdefault(row["query_id"], {}).setdefault(row["doc_id"], []).append(span)
    return qrels, (moments if spanned else None)


def _read_candidates(
    path: Path, queries: list[Item], doc_ids: set[str], qrels: dict[str, dict[str, int]]
) -> dict[str, list[str]]:
    """candidates.jsonl as {query id: doc ids}: every query has a list, which holds its relevant documents."""
    query_ids = {item.id for item in queries}
    candidates: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        unknown = sorted(set(row) - {"query_id", "doc_ids"})
        if unknown:
            raise EvaluationError(f"{where}: unknown field(s) {unknown} (fields: query_id, doc_ids)")
        query = row.get("query_id")
        if not _nonempty_str(query):
            raise EvaluationError(f"{where}: 'query_id' must be a non-empty string, got {describe(query)}")
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
    return candidates


def load_dataset(folder: str | Path) -> Dataset:
    """Read and validate one dataset folder; raises EvaluationError naming the file, line and field at fault."""
    folder = Path(folder)
    spec = _read_spec(folder / "dataset.json")
    queries = _read_items(folder / "queries.jsonl", folder)
    corpus = _read_items(folder / "corpus.jsonl", folder)
    doc_ids = {item.id for item in corpus}
    qrels, moments = _read_qrels(folder / "qrels.jsonl", {item.id for item in queries}, {d.id: d for d in corpus})
    metric = spec.get("metric", "R@1" if moments is None else MOMENT_METRICS[0])
    if moments is None and metric in MOMENT_METRICS:
        raise EvaluationError(f"{folder / 'dataset.json'}: 'metric' {metric!r} needs moments ('start', 'end') in qrels")
    candidates = None
    path = folder / "candidates.jsonl"
    if spec["ranking"] == "global" and path.exists():
        raise EvaluationError(f'{path}: candidates are only read with "ranking": "local" (this dataset: global)')
    if spec["ranking"] == "local":
        candidates = _read_candidates(path, queries, doc_ids, qrels)
    if moments is not None:
        ranked = {doc for docs in candidates.values() for doc in docs} if candidates else doc_ids
        for item in corpus:
            if item.id in ranked and set(item.fields) != {"video"}:
                raise EvaluationError(
                    f"{item.origin}: item {item.id!r}: a moment dataset ranks the segments of videos, so each of its "
                    f"ranked documents must be a video alone, not {item.modality}"
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
        abilities=list(spec["abilities"]),
        ranking=spec["ranking"],
        metric=metric,
        query_instruction=spec.get("query_instruction"),
        document_instruction=spec.get("document_instruction"),
        queries=queries,
        corpus=corpus,
        qrels=qrels,
        candidates=candidates,
        moments=moments,
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
