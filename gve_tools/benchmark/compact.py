"""Memory and storage: what compact vectors, truncated dimensions and low-memory weights cost in retrieval quality.

One run evaluates a checkpoint on a benchmark folder (`gve_tools.evaluation`) once per setting: float32, int8 and
binary vectors, binary re-scored by the float vectors, the first 1/2, 1/4 and 1/8 of the dimensions, and each
quantized-weights setting that runs on the device. Vector settings change only the scoring, so the embedding
cache serves them all; weight settings embed again. Beside them go the weights' memory at GVE-3B and GVE-7B
shapes (computed from the parameters) and the vector index figures (`gve_tools.benchmark.vectors`). The results
file is what the model card's "Memory and storage" section is generated from (`gve_tools.card.storage`).
"""

import argparse
import json
import platform
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import Any

from gve_tools.errors import GVEToolsError
from gve_tools.evaluation.cache import DEFAULT_CACHE_DIR, load_config
from gve_tools.quantization import WEIGHT_SETTINGS
from gve_tools.repo import ROOT
from gve_tools.vectors import VectorFormat

DEFAULT_BENCHMARK = Path("build/synthetic/test")  # `python scripts/make_synthetic_data.py build/synthetic`
DEFAULT_OUTPUT = ROOT / "benchmarks" / "memory-and-storage.json"
VECTOR_INDEX = ROOT / "benchmarks" / "vector-index.json"  # `python scripts/benchmark_vectors.py --output ...`

# The vector settings measured, in the card's order; truncations are added per the embedding's dimension.
VECTOR_SETTINGS = (
    VectorFormat("float32"),
    VectorFormat("int8"),
    VectorFormat("binary"),
    VectorFormat("binary", rescore=100),
    VectorFormat("binary", rescore=10),
)
TRUNCATIONS = (2, 4, 8)  # keep 1/2, 1/4 and 1/8 of the dimensions
# The goals: the most R@1 a setting may lose against float32 on any split.
GOALS = {"int8": 0.01, "binary+rescore100": 0.02}


def vector_settings(dimension: int) -> list[VectorFormat]:
    """VECTOR_SETTINGS, then float32 at each of TRUNCATIONS of `dimension`."""
    return [*VECTOR_SETTINGS, *(VectorFormat(dims=dimension // part) for part in TRUNCATIONS)]


def retrieval_row(setting: str, group: str, details: dict[str, Any], reference: dict[str, Any] | None) -> dict:
    """One setting's scores per ability (`details` from `evaluate`), and their change from `reference`'s."""
    scores = {key: round(value["score"], 6) for key, value in details["summary"].items()}
    row = {"setting": setting, "group": group, "scores": scores}
    if reference is not None:
        row["change"] = {key: round(scores[key] - reference["scores"][key], 6) for key in scores}
        row["worst_change"] = min(row["change"].values())
    return row


def measure_retrieval(
    benchmark: str | Path,
    model: str | None,
    weights: list[str],
    *,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate every vector setting and each of `weights` (quantized-weight settings; float is the reference).

    Returns {"model", "benchmark", "dimension", "chance", "rows", "left_out"}: one row per setting, with its
    main-metric score per ability and column AVG, and its change from float32 vectors of the float weights.
    Moment datasets are left out (named in "left_out"): they rank segments, scored with float32 vectors only.
    """
    from gve_tools.evaluation.format import load_benchmark
    from gve_tools.evaluation.runner import evaluate

    _, datasets = load_benchmark(benchmark)
    left_out = [dataset.name for dataset in datasets if dataset.moments is not None]
    names = [dataset.name for dataset in datasets if dataset.moments is None]
    if not names:
        raise GVEToolsError(f"{benchmark}: every dataset is a moment dataset; compact vectors score none of them")

    def run(**options: Any) -> dict[str, Any]:
        return evaluate(
            benchmark, model, device=device, cache_dir=cache_dir, output=None, report=False, datasets=names, **options
        )

    reference_details = run()
    model_info = reference_details["model"]
    dimension = load_config(model_info["model"], model_info["revision"]).text_config.hidden_size  # the embedding's
    reference = retrieval_row("float32", "vectors", reference_details, None)
    rows = [reference]
    for fmt in vector_settings(dimension)[1:]:
        group = "dimensions" if fmt.dims else "vectors"
        rows.append(retrieval_row(fmt.label, group, run(vectors=fmt), reference))
    for setting in weights:
        rows.append(retrieval_row(f"{setting} weights", "weights", run(weights=setting), reference))
    for row in rows:
        goal = GOALS.get(row["setting"])
        if goal is not None:
            row["goal"] = {"most_lost": goal, "met": row["worst_change"] >= -goal}
    chance = {key: round(value["chance"], 6) for key, value in reference_details["summary"].items()}
    datasets = reference_details["datasets"].values()
    return {
        "model": reference_details["model"],
        "benchmark": reference_details["benchmark"]["name"],
        "dimension": dimension,
        "metric": "the main metric of each dataset (R@1 here), averaged per ability; AVG averages the datasets",
        "chance": chance,
        "documents": [min(d["documents"] for d in datasets), max(d["documents"] for d in datasets)],
        "queries": [min(d["queries"] for d in datasets), max(d["queries"] for d in datasets)],
        "rows": rows,
        "left_out": left_out,
    }


def memory_and_storage(
    benchmark: str | Path,
    model: str | None,
    weights: list[str],
    *,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    vector_index: str | Path = VECTOR_INDEX,
) -> dict[str, Any]:
    """Everything the card's "Memory and storage" section shows: the retrieval cost of each setting
    (`measure_retrieval`), the weights' memory at GVE-3B and GVE-7B shapes (`gve_tools.quantization`) and the
    vector index figures (the results file of `scripts/benchmark_vectors.py`, measured apart: it needs GBs)."""
    from gve_tools.quantization import backbone_memory

    vector_index = Path(vector_index)
    if not vector_index.is_file():
        raise GVEToolsError(f"{vector_index} does not exist: run scripts/benchmark_vectors.py --output {vector_index}")
    index_figures = json.loads(vector_index.read_text())
    index_figures.pop("report", None)
    return {
        "date": date.today().isoformat(),
        "machine": machine(),
        "retrieval": measure_retrieval(benchmark, model, weights, device=device, cache_dir=cache_dir),
        "weights": backbone_memory(),
        "vector_index": index_figures,
    }


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import os

    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def report(result: dict[str, Any]) -> str:
    """The retrieval table (score per ability, the change from float32 in brackets) and the goals, as text."""
    retrieval = result["retrieval"]
    columns = list(retrieval["chance"])
    lines = [f"{'setting':<22} " + " ".join(f"{key:>14}" for key in columns), "-" * (23 + 15 * len(columns))]
    for row in retrieval["rows"]:
        cells = []
        for key in columns:
            change = row.get("change", {}).get(key)
            cells.append(f"{row['scores'][key]:.3f}" + (f" ({change:+.3f})" if change is not None else " " * 9))
        lines.append(f"{row['setting']:<22} " + " ".join(f"{cell:>14}" for cell in cells))
    lines.append(f"{'chance':<22} " + " ".join(f"{retrieval['chance'][key]:>14.3f}" for key in columns))
    for row in retrieval["rows"]:
        if "goal" in row:
            verdict = "met" if row["goal"]["met"] else "MISSED"
            lines.append(
                f"goal {row['setting']}: lose at most {row['goal']['most_lost']} on every split: {verdict} "
                f"(worst change {row['worst_change']:+.3f})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument(
        "benchmark",
        nargs="?",
        type=Path,
        default=DEFAULT_BENCHMARK,
        help=f"benchmark folder (default {DEFAULT_BENCHMARK}: python scripts/make_synthetic_data.py build/synthetic)",
    )
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the bundled tiny model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--weights",
        nargs="*",
        default=None,
        choices=WEIGHT_SETTINGS[1:],
        help="quantized-weight settings to measure (default: int8 int4)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"the evaluation's embedding cache, which serves every vector setting (default {DEFAULT_CACHE_DIR})",
    )
    parser.add_argument("--vector-index", type=Path, default=VECTOR_INDEX, help=f"default {VECTOR_INDEX}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results file (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    weights = args.weights if args.weights is not None else ["int8", "int4"]
    try:
        result = memory_and_storage(
            args.benchmark,
            args.model,
            weights,
            device=args.device,
            cache_dir=args.cache_dir,
            vector_index=args.vector_index,
        )
    except GVEToolsError as error:
        parser.error(str(error))
    result = {"command": shlex.join(["python", "scripts/benchmark_compact.py", *(argv or sys.argv[1:])]), **result}
    print(report(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0
