"""The model card's "Memory and storage" section, generated from the measured results file, so that the card's
numbers cannot drift from the measurements (`scripts/benchmark_compact.py` writes the file).
"""

import json
from pathlib import Path
from typing import Any

from gve_tools.card.results import ModelCardError
from gve_tools.repo import ROOT

STORAGE_PATH = ROOT / "benchmarks" / "memory-and-storage.json"
BACKBONES = ("GVE-3B", "GVE-7B")
# The weight settings the card shows, in order, with the words for each (the keys of gve_tools.quantization's
# weight_memory).
WEIGHT_ROWS = {
    "float": "bf16 (no quantizer)",
    "int8/cuda": "int8, CUDA GPU",
    "int4/cuda": "int4 (NF4), CUDA GPU",
    "int8/cpu": "int8, CPU",
    "int4/cpu": "int4 (NF4), CPU",
}
# The vector rows the card shows (the labels of gve_tools.vectors.VectorFormat).
VECTOR_ROWS = ("float32", "int8", "binary", "binary+rescore100")


def load_storage(path: str | Path = STORAGE_PATH) -> dict[str, Any]:
    """The results file, with the parts the card reads checked."""
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelCardError(f"cannot read the memory and storage results {path}: {error}") from None
    missing = [key for key in ("retrieval", "weights", "vector_index", "command", "machine") if key not in result]
    if missing:
        raise ModelCardError(f"{path}: missing {', '.join(missing)}; run scripts/benchmark_compact.py again")
    return result


def weights_table(result: dict[str, Any]) -> str:
    """GiB of the weights per setting at each backbone's shapes."""
    lines = ["| weights | backend | " + " | ".join(BACKBONES) + " |", "| --- | --- |" + " ---: |" * len(BACKBONES)]
    for key, words in WEIGHT_ROWS.items():
        backend = result["weights"][BACKBONES[0]]["weights"][key]["backend"]
        sizes = " | ".join(f"{result['weights'][name]['weights'][key]['gib']:.1f} GiB" for name in BACKBONES)
        lines.append(f"| {words} | {backend} | {sizes} |")
    return "\n".join(lines)


def vectors_table(result: dict[str, Any]) -> str:
    """Bytes a vector, index size and exact search time per 1M vectors, and recall, per vector format."""
    index = result["vector_index"]
    rows = {(row["model"], row["vectors"]): row for row in index["results"]}
    k = index["k"]
    head = (
        "| vectors | bytes a vector (GVE-3B / GVE-7B) | index per 1M GVE-7B vectors | "
        f"search per query, 1M GVE-7B vectors | recall@{k} |"
    )
    lines = [head, "| --- | ---: | ---: | ---: | ---: |"]
    for label in VECTOR_ROWS:
        small, large = rows[(BACKBONES[0], label)], rows[(BACKBONES[1], label)]
        per_1m = large["per_1m"]
        size = f"{per_1m['index_bytes'] / 1e9:.2f} GB"
        if per_1m["float_copy_bytes"]:
            size += f" (+ {per_1m['float_copy_bytes'] / 1e9:.1f} GB float16 on disk)"
        lines.append(
            f"| {label} | {small['bytes_per_vector']:,.0f} / {large['bytes_per_vector']:,.0f} | {size} | "
            f"{per_1m['search_ms_per_query']:,.0f} ms | {large[f'recall_at_{k}']:.3f} |"
        )
    return "\n".join(lines)


def quality_table(result: dict[str, Any]) -> str:
    """R@1 per ability for each setting, its change from float32 vectors of float weights beside it."""
    retrieval = result["retrieval"]
    columns = list(retrieval["chance"])
    lines = ["| setting | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for row in retrieval["rows"]:
        cells = []
        for key in columns:
            change = row.get("change", {}).get(key)
            cells.append(f"{row['scores'][key]:.3f}" + ("" if change is None else f" ({change:+.3f})"))
        lines.append(f"| {row['setting']} | " + " | ".join(cells) + " |")
    lines.append("| *chance* | " + " | ".join(f"*{retrieval['chance'][key]:.3f}*" for key in columns) + " |")
    return "\n".join(lines)


def storage_context(path: str | Path = STORAGE_PATH) -> dict[str, Any]:
    """The template's placeholders of the section: the three tables and the figures its sentences quote."""
    result = load_storage(path)
    retrieval = result["retrieval"]
    rows = {row["setting"]: row for row in retrieval["rows"]}
    index = result["vector_index"]
    return {
        "storage": {
            "weights_table": weights_table(result),
            "vectors_table": vectors_table(result),
            "quality_table": quality_table(result),
            "lost": {
                setting: f"{max(0.0, -row['worst_change']):.3f}" for setting, row in rows.items() if "change" in row
            },
            "gib": {
                name: {key: f"{value['gib']:.1f}" for key, value in result["weights"][name]["weights"].items()}
                for name in BACKBONES
            },
            "dimension": retrieval["dimension"],
            "corpus_sizes": "{:,} to {:,}".format(*retrieval["documents"]),
            "fewest_queries": retrieval["queries"][0],
            "most_queries": retrieval["queries"][1],
            "timing": f"a batch of {index['queries']} queries, top {index['k']}",
            "benchmark": retrieval["benchmark"],
            "measured_n": f"{index['n']:,}",
            "cores": index["machine"]["cpu_cores"],
            "command": result["command"],
            "vector_command": index["command"],
            "date": result["date"],
        }
    }
