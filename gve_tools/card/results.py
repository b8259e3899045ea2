"""The results file of a model card (scores of GVE and the baselines on a benchmark): reading and checking it, and
the results table with the best and second-best score of each column marked."""

import json
import re
from pathlib import Path
from typing import Any

from gve_tools.errors import GVEToolsError

BENCHMARK_FIELDS = {
    "name": str,
    "full_name": str,
    "dataset": str,
    "num_datasets": int,
    "task_type": str,
    "task_name": str,
    "overall_column": str,
    "source_name": str,
    "source_url": str,
    "metric": str,
    "decimals": int,
}
COLUMN_FIELDS = {"key": str, "name": str, "group": str}
MODEL_FIELDS = {"name", "params", "ours", "scores"}


class ModelCardError(GVEToolsError, ValueError):
    """A bad input of the card generator (results file, template, model id); the message names the file and field."""


def _describe(value: Any) -> str:
    """A value and its type, for messages about a results file."""
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


def _check_object(value: Any, where: str, fields: dict[str, type], path: Path) -> None:
    if not isinstance(value, dict):
        raise ModelCardError(f"{path}: {where} must be an object, got {_describe(value)}")
    for name, kind in fields.items():
        if name not in value:
            raise ModelCardError(f"{path}: {where} has no {name!r}")
        item = value[name]
        if not isinstance(item, kind) or isinstance(item, bool) or (kind is str and not item.strip()):
            raise ModelCardError(f"{path}: {where}.{name} must be a non-empty {kind.__name__}, got {_describe(item)}")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ModelCardError(f"{path}: {where} has unknown field(s) {unknown} (expected {sorted(fields)})")


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a results file: `source`, `benchmark`, `columns` and `models` (each with every score).

    Raises ModelCardError naming the file and the entry at fault, e.g. a model without a score for a column.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelCardError(f"results file {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelCardError(f"{path}: not valid JSON: {error}") from None
    _check_object(data, "the top level", {"source": str, "benchmark": dict, "columns": list, "models": list}, path)
    _check_object(data["benchmark"], "benchmark", BENCHMARK_FIELDS, path)
    benchmark = data["benchmark"]
    if not 0 <= benchmark["decimals"] <= 6:
        raise ModelCardError(f"{path}: benchmark.decimals must be from 0 to 6, got {benchmark['decimals']}")

    columns = data["columns"]
    if not columns:
        raise ModelCardError(f"{path}: columns is empty")
    keys: list[str] = []
    for index, column in enumerate(columns):
        _check_object(column, f"columns[{index}]", COLUMN_FIELDS, path)
        if column["key"] in keys:
            raise ModelCardError(f"{path}: columns[{index}]: column {column['key']!r} appears twice")
        keys.append(column["key"])
    if benchmark["overall_column"] not in keys:
        raise ModelCardError(
            f"{path}: benchmark.overall_column {benchmark['overall_column']!r} is not a column (columns: {keys})"
        )

    models = data["models"]
    if not models:
        raise ModelCardError(f"{path}: models is empty")
    names: list[str] = []
    for index, model in enumerate(models):
        where = f"models[{index}]"
        if not isinstance(model, dict):
            raise ModelCardError(f"{path}: {where} must be an object, got {_describe(model)}")
        name = model.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ModelCardError(f"{path}: {where} needs a non-empty string 'name', got {_describe(name)}")
        where = f"models[{index}] ({name})"
        if name in names:
            raise ModelCardError(f"{path}: {where}: model {name!r} appears twice")
        names.append(name)
        unknown = sorted(set(model) - MODEL_FIELDS)
        if unknown:
            raise ModelCardError(f"{path}: {where} has unknown field(s) {unknown} (expected {sorted(MODEL_FIELDS)})")
        params = model.get("params")
        if params is not None and (not isinstance(params, str) or not params.strip()):
            raise ModelCardError(f"{path}: {where}.params must be a string such as '8.3B' or null, got {params!r}")
        if not isinstance(model.get("ours", False), bool):
            raise ModelCardError(f"{path}: {where}.ours must be true or false, got {model['ours']!r}")
        scores = model.get("scores")
        if not isinstance(scores, dict):
            raise ModelCardError(f"{path}: {where}.scores must be an object of column: score, got {_describe(scores)}")
        for key in keys:
            if key not in scores:
                raise ModelCardError(f"{path}: {where} has no score for column {key!r}")
            score = scores[key]
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
                raise ModelCardError(
                    f"{path}: {where}.scores.{key} must be a number from 0 to 1, got {_describe(score)}"
                )
        unknown = [key for key in scores if key not in keys]
        if unknown:
            raise ModelCardError(f"{path}: {where}.scores has unknown column(s) {unknown} (columns: {keys})")
    return data


def column_marks(results: dict[str, Any]) -> dict[str, dict[str, str]]:
    """For each column, the models whose score is the highest ("best") and the second-highest ("second").

    Scores are compared as printed (rounded to the results file's `decimals`). Equal scores share a mark: all
    models with the highest score are "best", and "second" goes to the next lower score, whoever has it.
    Returns {column key: {model name: "best" | "second"}}.
    """
    decimals = results["benchmark"]["decimals"]
    marks: dict[str, dict[str, str]] = {}
    for column in results["columns"]:
        key = column["key"]
        rounded = {model["name"]: round(model["scores"][key], decimals) for model in results["models"]}
        ranking = sorted(set(rounded.values()), reverse=True)
        labels = dict(zip(ranking, ("best", "second"), strict=False))
        marks[key] = {name: labels[value] for name, value in rounded.items() if value in labels}
    return marks


def results_table(results: dict[str, Any]) -> str:
    """The results as a Markdown table: one row per model, in file order; GVE's own models' names in bold."""
    decimals = results["benchmark"]["decimals"]
    keys = [column["key"] for column in results["columns"]]
    marks = column_marks(results)
    style = {"best": "**{}**", "second": "<u>{}</u>", None: "{}"}
    lines = ["| Model | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
    for model in results["models"]:
        name = f"**{model['name']}**" if model.get("ours") else model["name"]
        cells = [style[marks[key].get(model["name"])].format(f"{model['scores'][key]:.{decimals}f}") for key in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_name_of(model_id: str) -> str:
    """The last part of a repo id: `Alibaba-NLP/GVE-7B` -> `GVE-7B`."""
    return model_id.rstrip("/").rsplit("/", 1)[-1]


def model_row(results: dict[str, Any], model_id: str) -> dict[str, Any] | None:
    """The results row of `model_id`, named like its last part (case aside), or None when it has none."""
    name = model_name_of(model_id).casefold()
    return next((model for model in results["models"] if model["name"].casefold() == name), None)


def benchmark_link(benchmark: dict[str, Any]) -> str:
    """The benchmark's name, linked to its Hub dataset when `dataset` is a Hub id (`local/...` names are not)."""
    dataset = benchmark["dataset"]
    if re.fullmatch(r"[\w.-]+/[\w.-]+", dataset) and not dataset.startswith("local/"):
        return f"[{benchmark['name']}](https://huggingface.co/datasets/{dataset})"
    return benchmark["name"]
