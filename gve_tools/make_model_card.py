#!/usr/bin/env python
"""Write README.md, GVE's model card, from model_card/template.md and the UVRB results in model_card/uvrb_results.json.

README.md is generated, never edited by hand. The card is the Hub metadata block (YAML, built with
huggingface_hub's `ModelCardData`: library, pipeline tag, tags, license, language, base model, datasets, the
sentence-similarity widget and a `model-index` with this model's UVRB scores) followed by the template rendered
with Jinja2: usage, prompt format, controls, the results table (the best score of each column in bold, the
second-highest underlined), citation. The limits tables are taken from handler.py's docstring and from
processing_gve.py's `MediaLimits`, and the supported transformers range from requirements.txt and
constraints.txt, so the card follows those files.

The output depends only on its inputs: regenerating gives identical bytes. CI fails while the committed
README.md differs from this script's output; `--check` tells the same without writing anything.

    python scripts/make_model_card.py                 # rewrite README.md
    python scripts/make_model_card.py --check         # exit 1 if README.md is stale
    python scripts/make_model_card.py --model-id Alibaba-NLP/GVE-3B \\
        --base-model Qwen/Qwen2.5-VL-3B-Instruct --output build/GVE-3B/README.md
"""

import argparse
import ast
import difflib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from gve_tools.repo import ROOT
from gve_tools.text import docstring_parser

RESULTS_PATH = ROOT / "model_card" / "uvrb_results.json"
TEMPLATE_PATH = ROOT / "model_card" / "template.md"
OUTPUT_PATH = ROOT / "README.md"
HANDLER_PATH = ROOT / "handler.py"
PROCESSING_PATH = ROOT / "processing_gve.py"
REQUIREMENTS_PATH = ROOT / "requirements.txt"
CONSTRAINTS_PATH = ROOT / "constraints.txt"
MODEL_ID = "Alibaba-NLP/GVE-7B"
BASE_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
REGENERATE = "python scripts/make_model_card.py"

# The metadata that does not come from the results file. The widget is answered by handler.py (a test checks it).
METADATA: dict[str, Any] = {
    "library_name": "transformers",
    "pipeline_tag": "sentence-similarity",
    "license": "apache-2.0",
    "language": "en",
    "tags": [
        "video",
        "retrieval",
        "embedding",
        "multimodal",
        "qwen2.5-vl",
        "sentence-transformers",
        "custom_code",
    ],
    "base_model_relation": "finetune",  # the LoRA is merged into the base model's weights
    "datasets": [
        "Alibaba-NLP/UVRB",
        "Vividbot/vast-2m-vi",
        "TempoFunk/webvid-10M",
        "OpenGVLab/InternVid",
    ],
    "metrics": ["recall"],
    "widget": [
        {
            "source_sentence": "a red square moving to the right",
            "sentences": [
                "a red square sliding across the frame from left to right",
                "a blue circle moving up",
                "a dog running on the beach",
            ],
        }
    ],
}
# The order of the metadata block; `model-index` (built from the eval results) always comes last.
KEY_ORDER = [
    "library_name",
    "pipeline_tag",
    "license",
    "language",
    "tags",
    "base_model",
    "base_model_relation",
    "datasets",
    "metrics",
    "widget",
]

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


class ModelCardError(ValueError):
    """A bad input of the generator (results file, template, model id); the message names the file and the field."""


def _describe(value: Any) -> str:
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


def card_metadata(results: dict[str, Any], row: dict[str, Any] | None, base_model: str):
    """The card's metadata as a `huggingface_hub.ModelCardData`; `model-index` holds `row`'s scores, if any."""
    from huggingface_hub import EvalResult, ModelCardData

    benchmark = results["benchmark"]
    evaluation = {}
    if row is not None:
        evaluation["model_name"] = row["name"]
        evaluation["eval_results"] = [
            EvalResult(
                task_type=benchmark["task_type"],
                task_name=benchmark["task_name"],
                dataset_type=benchmark["dataset"],
                dataset_name=benchmark["name"],
                metric_type=column["key"].lower(),
                metric_name=f"{column['key']} ({column['name']})",
                metric_value=round(float(row["scores"][column["key"]]), benchmark["decimals"]),
                source_name=benchmark["source_name"],
                source_url=benchmark["source_url"],
            )
            for column in results["columns"]
        ]
    return ModelCardData(**{**METADATA, "base_model": base_model}, **evaluation)


def benchmark_link(benchmark: dict[str, Any]) -> str:
    """The benchmark's name, linked to its Hub dataset when `dataset` is a Hub id (`local/...` names are not)."""
    dataset = benchmark["dataset"]
    if re.fullmatch(r"[\w.-]+/[\w.-]+", dataset) and not dataset.startswith("local/"):
        return f"[{benchmark['name']}](https://huggingface.co/datasets/{dataset})"
    return benchmark["name"]


def scores_source(results: dict[str, Any], results_path: Path) -> str:
    """The sentence under the results table that says where its scores come from."""
    if results_path.resolve() == RESULTS_PATH.resolve():
        return f"The scores are those published with GVE; `{_in_repo(RESULTS_PATH)}` records their source."
    return f"The scores come from `{_in_repo(results_path.resolve())}`: {results['source']}"


def handler_limits_table(path: Path = HANDLER_PATH) -> str:
    """The limits table of handler.py's module docstring (read without importing the handler)."""
    return limits_table(path)


def media_limits_table(path: Path = PROCESSING_PATH) -> str:
    """The library's limits table, in the docstring of processing_gve.py's `MediaLimits`."""
    return limits_table(path, "MediaLimits")


def limits_table(path: Path, owner: str | None = None) -> str:
    """The `| limit | environment variable | ...` table of a module's docstring, or of its class `owner`'s, read
    without importing the module."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as error:
        raise ModelCardError(f"cannot read the limits table from {path}: {error}") from None
    node = next((item for item in tree.body if getattr(item, "name", None) == owner), None) if owner else tree
    docstring = (ast.get_docstring(node, clean=True) if node is not None else None) or ""
    lines = docstring.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| limit | environment variable |")), None)
    if start is None:
        where = f"{path} ({owner})" if owner else str(path)
        raise ModelCardError(f"{where}: its docstring has no table starting with '| limit | environment variable |'")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def transformers_support(requirements: Path = REQUIREMENTS_PATH, constraints: Path = CONSTRAINTS_PATH) -> tuple:
    """(`transformers>=A,<B` from requirements.txt, the version constraints.txt pins for the tests)."""
    found = []
    for path, pattern in (
        (requirements, r"^(transformers\s*[<>=!~][^;#\s]*(?:\s*,\s*[<>=!~][^;#\s]*)*)"),
        (constraints, r"^transformers==([^;#\s]+)"),
    ):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ModelCardError(f"cannot read the transformers requirement from {path}: {error}") from None
        match = re.search(pattern, text, flags=re.M)
        if match is None:
            raise ModelCardError(f"{path}: no transformers line (pattern {pattern})")
        found.append(re.sub(r"\s+", "", match.group(1)))
    return tuple(found)


def render_body(template_path: Path, context: dict[str, Any]) -> str:
    """Render the card body from the Jinja2 template; unknown placeholders are errors."""
    import jinja2

    if not template_path.is_file():
        raise ModelCardError(
            f"template {template_path} does not exist"
            if not template_path.exists()
            else f"{template_path} is not a file"
        )
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    try:
        template = environment.from_string(template_path.read_text(encoding="utf-8"))
        body = template.render(**context)
    except jinja2.TemplateSyntaxError as error:
        raise ModelCardError(f"{template_path}:{error.lineno}: template syntax error: {error.message}") from None
    except jinja2.UndefinedError as error:
        raise ModelCardError(
            f"{template_path}: unknown placeholder: {error.message} (placeholders: {', '.join(sorted(context))})"
        ) from None
    return body.strip("\n") + "\n"


def render_model_card(
    results_path: str | Path = RESULTS_PATH,
    template_path: str | Path = TEMPLATE_PATH,
    model_id: str = MODEL_ID,
    base_model: str = BASE_MODEL,
) -> str:
    """The full README.md of `model_id`: the YAML metadata block, then the rendered template.

    The results row named like the model id's last part (`GVE-7B`) becomes the `model-index` metadata; a model
    without a row (a new fine-tune, a test build) gets a card without `model-index`.

    The output is a function of the inputs only (results file, template, the limits tables of handler.py and
    processing_gve.py, requirements.txt and constraints.txt), so rendering twice gives identical text.
    """
    from huggingface_hub import ModelCard

    for name, value in (("model id", model_id), ("base model", base_model)):
        if not isinstance(value, str) or not value.strip() or any(char.isspace() for char in value):
            raise ModelCardError(f"the {name} must be a non-empty repo id without spaces, got {value!r}")
    results_path, template_path = Path(results_path), Path(template_path)
    results = load_results(results_path)
    benchmark = results["benchmark"]
    overall = benchmark["overall_column"]
    decimals = benchmark["decimals"]
    row = model_row(results, model_id)
    requirement, tested = transformers_support()

    this = None
    if row is not None:
        score = round(row["scores"][overall], decimals)
        this = {
            "name": row["name"],
            "params": row.get("params"),
            "avg": f"{row['scores'][overall]:.{decimals}f}",
            "rank": 1 + sum(round(model["scores"][overall], decimals) > score for model in results["models"]),
            "models": len(results["models"]),
        }
    context = {
        "model_id": model_id,
        "model_name": row["name"] if row is not None else model_name_of(model_id),
        "base_model": base_model,
        "this": this,
        "benchmark": benchmark,
        "benchmark_link": benchmark_link(benchmark),
        "scores_source": scores_source(results, results_path),
        "abilities": [column for column in results["columns"] if column["key"] != overall],
        "results_table": results_table(results),
        "handler_limits_table": handler_limits_table(),
        "media_limits_table": media_limits_table(),
        "transformers_requirement": requirement,
        "transformers_tested": tested,
    }
    body = render_body(template_path, context)
    metadata = card_metadata(results, row, base_model)
    text = f"---\n{metadata.to_yaml(original_order=KEY_ORDER)}\n---\n\n{body}"
    if str(ModelCard(text)) != text:  # the Hub's parser must give back exactly this metadata
        raise ModelCardError("the metadata does not survive a round trip through huggingface_hub.ModelCard")
    return text


def stale_summary(current: str, expected: str, name: str, command: str = REGENERATE, context_lines: int = 20) -> str:
    """A short account of how `current` differs from `expected`: counts, the first line, the start of the diff."""
    diff = list(
        difflib.unified_diff(
            current.splitlines(), expected.splitlines(), f"{name} (current)", f"{name} (generated)", lineterm=""
        )
    )
    removed = sum(line.startswith("-") and not line.startswith("---") for line in diff)
    added = sum(line.startswith("+") and not line.startswith("+++") for line in diff)
    first = next(
        (i for i, (a, b) in enumerate(zip(current.splitlines(), expected.splitlines(), strict=False)) if a != b), None
    )
    if first is None:
        first = min(len(current.splitlines()), len(expected.splitlines()))
    shown = diff[: context_lines + 2]
    more = f"\n... ({len(diff) - len(shown)} more diff lines)" if len(diff) > len(shown) else ""
    return (
        f"{name} is stale: {removed} line(s) would be removed and {added} added, from line {first + 1}; "
        f"run `{command}` and commit the result.\n" + "\n".join(shown) + more
    )


def _in_repo(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def build_parser() -> argparse.ArgumentParser:
    parser = docstring_parser(
        __doc__,
        "make_model_card.py",
        "exit status: 0 written (with --check: up to date); 1 with --check: OUTPUT is stale or missing;\n"
        "2 bad arguments or inputs (missing or malformed results file, missing template, unknown model id).\n"
        "Paths are relative to the current folder; the defaults are in the repository.",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_PATH,
        metavar="JSON",
        help=f"UVRB scores of GVE and the baselines (default: {_in_repo(RESULTS_PATH)})",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE_PATH,
        metavar="MD",
        help=f"Jinja2 template of the card body (default: {_in_repo(TEMPLATE_PATH)})",
    )
    parser.add_argument(
        "--model-id",
        default=MODEL_ID,
        metavar="REPO_ID",
        help="Hub id the card is for, used in the snippets; its last part (GVE-7B) is the results row that goes "
        f"into model-index (default: {MODEL_ID})",
    )
    parser.add_argument(
        "--base-model",
        default=BASE_MODEL,
        metavar="REPO_ID",
        help=f"base_model of the metadata: the model GVE's LoRA is merged into (default: {BASE_MODEL})",
    )
    parser.add_argument(
        "--output", type=Path, default=OUTPUT_PATH, help=f"file to write (default: {_in_repo(OUTPUT_PATH)})"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a short diff summary if OUTPUT differs from the generated card",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        text = render_model_card(args.results, args.template, args.model_id, args.base_model)
    except ModelCardError as error:
        parser.error(str(error))
    if model_row(load_results(args.results), args.model_id) is None:
        print(
            f"note: no model in {args.results} is named {model_name_of(args.model_id)!r}, "
            "so the card has no model-index",
            file=sys.stderr,
        )
    output: Path = args.output
    if output.exists() and not output.is_file():
        parser.error(f"output {output} is not a file")
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if args.check:
        arguments = sys.argv[1:] if argv is None else argv
        command = " ".join([REGENERATE, *(shlex.quote(arg) for arg in arguments if arg != "--check")])
        if current is None:
            print(f"{output} does not exist; run `{command}`.", file=sys.stderr)
            return 1
        if current != text:
            print(stale_summary(current, text, str(output), command), file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    if current == text:
        print(f"{output} is up to date")
        return 0
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(text.encode("utf-8"))
    except OSError as error:
        parser.error(f"cannot write {output}: {error}")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
