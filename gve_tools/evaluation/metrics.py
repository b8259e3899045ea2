"""Rank metrics and their chance levels, a dataset's scores, and the summary per ability.

R@k is UVRB's hit@k, nDCG@k follows trec_eval, MRR is 1/rank of the first relevant document; ties are broken
against the relevant documents; chance is the exact expectation under a uniformly random ranking. The command's
help (`gve_tools.evaluation.cli`) states these conventions in full.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from gve_tools.evaluation.format import METRICS, OVERALL, Dataset, EvaluationError
from gve_tools.vectors import VectorFormat, rescore, scoring_vectors, truncate

FLOAT32 = VectorFormat()

HIT_CUTOFFS = {"R@1": 1, "R@5": 5, "R@10": 10}
NDCG_CUTOFFS = {"nDCG@5": 5, "nDCG@10": 10}

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
# and the moment abilities (MMEB-V2's moment retrieval; video corpus moment retrieval, as TVR's VCMR), after them
ABILITIES = {
    **UVRB_ABILITIES,
    "MR": ("Moment Retrieval", "moment"),
    "VCMR": ("Video Corpus Moment Retrieval", "moment"),
}


def rank_metrics(scores: np.ndarray, relevance: np.ndarray, valid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-query metrics of score matrices: {metric: [Q] values}, for METRICS.

    `scores` [Q, N] (higher is better), `relevance` [Q, N] graded judgments (>= 1 relevant, 0 not), `valid`
    [Q, N] which cells are candidates (default: all; padding for local ranking). Every query needs a relevant
    candidate. Ties: non-relevant first, then lower grades, then column order.
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


@dataclass
class DatasetResult:
    """One dataset's mean metrics and their chance levels, as the tables and the details file give them."""

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
    dataset: Dataset,
    query_embeddings: np.ndarray,
    doc_embeddings: dict[str, np.ndarray],
    chunk_cells: int = 1 << 22,
    vectors: VectorFormat = FLOAT32,
) -> DatasetResult:
    """Rank each query's candidates by dot product and average the metrics and their chance levels.

    `query_embeddings` [Q, D] in queries.jsonl order; `doc_embeddings` maps doc id -> [D], or [segments, D] for a
    video embedded as segments, whose score is then its best segment's (only the ranked documents are needed).
    `vectors` scores as a compact index would (`gve_tools.vectors`; int8 is trained on the ranked documents' vectors,
    segments included). Queries are scored in chunks of about `chunk_cells` query x candidate cells.
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
    rows = [np.atleast_2d(doc_embeddings[doc]) for doc in ranked]
    segmented = any(len(r) > 1 for r in rows)
    offsets = np.cumsum([0, *(len(r) for r in rows[:-1])])
    float_docs = truncate(np.concatenate(rows), None)
    float_queries = truncate(query_embeddings, None)
    queries, docs = scoring_vectors(float_queries, float_docs, vectors)

    def video_scores(query_rows: np.ndarray, doc_rows: np.ndarray) -> np.ndarray:
        """[q, len(ranked)]: each document's score, its best segment's for a segmented video."""
        return np.maximum.reduceat(query_rows @ doc_rows.T, offsets, axis=1) if segmented else query_rows @ doc_rows.T

    width = max(len(c) for c in candidates)
    step = max(1, chunk_cells // (len(docs) if segmented else width))
    if dataset.ranking == "local" and not segmented:  # the candidates are gathered per query: [step, width, D]
        step = max(1, min(step, chunk_cells * 16 // (width * docs.shape[1])))
    totals = dict.fromkeys(METRICS, 0.0)
    chance = dict.fromkeys(METRICS, 0.0)
    for start in tqdm(range(0, len(queries), step), desc=f"Scoring {dataset.name}", unit="chunk", leave=False):
        chunk = dataset.queries[start : start + step]
        relevance = np.zeros((len(chunk), width), dtype=np.int64)
        if dataset.ranking == "global":
            scores = video_scores(queries[start : start + step], docs)
            float_scores = video_scores(float_queries[start : start + step], float_docs) if vectors.rescore else None
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
            if segmented:
                scores = np.take_along_axis(video_scores(queries[start : start + step], docs), index, axis=1)
                if vectors.rescore:
                    float_scores = video_scores(float_queries[start : start + step], float_docs)
                    float_scores = np.take_along_axis(float_scores, index, axis=1)
            else:
                scores = np.einsum("qd,qcd->qc", queries[start : start + step], docs[index])
                if vectors.rescore:
                    float_scores = np.einsum("qd,qcd->qc", float_queries[start : start + step], float_docs[index])
        if vectors.rescore:
            scores = rescore(scores, float_scores, vectors.rescore, valid)
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
    known = list(ABILITIES)
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
