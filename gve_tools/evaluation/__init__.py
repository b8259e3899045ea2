"""UVRB-style evaluation of a GVE checkpoint on a folder of local retrieval datasets (`python scripts/evaluate.py`).

format   the benchmark format: datasets, their items, qrels and candidates, read and checked before any model loads
metrics  rank metrics and their exact chance levels, a dataset's scores, the summary per ability
cache    the embedding cache (a folder per checkpoint and settings, a key per input) and embedding what it lacks
runner   a run: embed, score, print the tables, write the results file and its details file
cli      `python scripts/evaluate.py`: its help (the format and the conventions in full) and its options
"""

from gve_tools.evaluation.cache import EmbeddingCache, embed_all
from gve_tools.evaluation.format import METRICS, Dataset, EvaluationError, Item, load_benchmark, load_dataset
from gve_tools.evaluation.metrics import DatasetResult, chance_metrics, rank_metrics, score_dataset, summarise
from gve_tools.evaluation.runner import details_file, evaluate

__all__ = [
    "METRICS",
    "Dataset",
    "DatasetResult",
    "EmbeddingCache",
    "EvaluationError",
    "Item",
    "chance_metrics",
    "details_file",
    "embed_all",
    "evaluate",
    "load_benchmark",
    "load_dataset",
    "rank_metrics",
    "score_dataset",
    "summarise",
]
