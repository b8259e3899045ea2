"""Moment retrieval: each query's top segment, among the segments of its candidate videos (local ranking) or of the
whole corpus (global), against the query's relevant spans by temporal IoU; with the exact chance levels.

A segment's IoU is its best with a relevant span of the same video (0 in any other video). Ties between segments
are broken against the query, as the rank metrics break them: among equal scores, the lowest IoU comes first.
"""

import numpy as np

from gve_tools.evaluation.format import MOMENT_METRICS, Dataset, EvaluationError

THRESHOLDS = {"R@1,IoU=0.5": 0.5, "R@1,IoU=0.7": 0.7}
_TOLERANCE = 1e-9  # an IoU of 0.5 computed as 0.49999999 still counts


class Segments:
    """A video's segments as evaluated: their spans [n, 2] in seconds and embeddings [n, D]."""

    def __init__(self, spans: np.ndarray, embeddings: np.ndarray) -> None:
        self.spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
        self.embeddings = np.asarray(embeddings, dtype=np.float32)


def temporal_iou(spans: "np.ndarray | tuple[float, float]", span: tuple[float, float]) -> "np.ndarray | float":
    """The temporal IoU (intersection over union of two time ranges) of each (start, end) row of `spans` [n, 2]
    with `span`; a float for one (start, end)."""
    rows = np.asarray(spans, dtype=np.float64)
    both = np.atleast_2d(rows)
    inter = np.clip(np.minimum(both[:, 1], span[1]) - np.maximum(both[:, 0], span[0]), 0.0, None)
    union = np.maximum(both[:, 1], span[1]) - np.minimum(both[:, 0], span[0])
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou[0]) if rows.ndim == 1 else iou


def moment_scores(
    dataset: Dataset, query_embeddings: np.ndarray, segments: dict[str, Segments]
) -> tuple[dict[str, float], dict[str, float]]:
    """The dataset's mean MOMENT_METRICS and their chance levels (a uniformly random top segment of the pool).

    `segments` holds every ranked video's; the pool of a query is the segments of its candidates (local ranking)
    or of every corpus video (global).
    """
    if dataset.moments is None:
        raise EvaluationError(f"{dataset.name}: not a moment dataset (its qrels have no 'start' and 'end')")
    pools: dict[tuple[str, ...], tuple[dict[str, slice], np.ndarray, np.ndarray]] = {}
    totals = dict.fromkeys(MOMENT_METRICS, 0.0)
    chance = dict.fromkeys(MOMENT_METRICS, 0.0)
    corpus = tuple(item.id for item in dataset.corpus)
    for item, query in zip(dataset.queries, query_embeddings, strict=True):
        docs = tuple(dataset.candidates[item.id]) if dataset.ranking == "local" else corpus
        if docs not in pools:  # the pool's segments, and where each video's are among them
            ends = np.cumsum([len(segments[doc].spans) for doc in docs])
            where = {doc: slice(end - len(segments[doc].spans), end) for doc, end in zip(docs, ends, strict=True)}
            spans = np.concatenate([segments[doc].spans for doc in docs])
            pools[docs] = (where, spans, np.concatenate([segments[doc].embeddings for doc in docs]))
        where, spans, embeddings = pools[docs]
        ious = np.zeros(len(spans))
        for doc, relevant in dataset.moments[item.id].items():
            for span in relevant:
                ious[where[doc]] = np.maximum(ious[where[doc]], temporal_iou(spans[where[doc]], span))
        scores = embeddings @ np.asarray(query, dtype=np.float32)
        if np.isnan(scores).any():
            raise EvaluationError(f"{dataset.name}: a score is NaN (the model gave a NaN embedding)")
        top = np.lexsort((ious, -scores.astype(np.float64)))[0]  # the last key is the primary one
        for name, threshold in THRESHOLDS.items():
            totals[name] += float(ious[top] >= threshold - _TOLERANCE)
            chance[name] += float(np.mean(ious >= threshold - _TOLERANCE))
        totals["mIoU"] += float(ious[top])
        chance["mIoU"] += float(ious.mean())
    count = len(dataset.queries)
    return {k: v / count for k, v in totals.items()}, {k: v / count for k, v in chance.items()}
