"""Rendering GVE's model card: the Hub metadata block and the body from `model_card/template.md`, in two renderings.

The repository's README.md (`audience="repository"`) carries everything, the set-up commands and the developer
sections included. The card written into a checkpoint folder for the Hub (`audience="hub"`) carries only what a
Hub reader can use (loading, sentence-transformers, vLLM, endpoints, the prompt format, results, citation) and
links to the source repository for the rest: the template puts what is not on the Hub inside
`{% if repository %}` blocks.
"""

import ast
import difflib
import re
from pathlib import Path
from typing import Any

from gve_tools.card.gpu import gpu_context
from gve_tools.card.results import (
    ModelCardError,
    benchmark_link,
    load_results,
    model_name_of,
    model_row,
    results_table,
)
from gve_tools.card.storage import STORAGE_PATH, storage_context
from gve_tools.repo import ROOT

RESULTS_PATH = ROOT / "model_card" / "uvrb_results.json"
TEMPLATE_PATH = ROOT / "model_card" / "template.md"
OUTPUT_PATH = ROOT / "README.md"
HANDLER_PATH = ROOT / "handler.py"
PROCESSING_PATH = ROOT / "processing_gve.py"
REQUIREMENTS_PATH = ROOT / "requirements.txt"
CONSTRAINTS_PATH = ROOT / "constraints.txt"
MODEL_ID = "Alibaba-NLP/GVE-7B"
BASE_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
# Where the tooling that is not on the Hub lives (the Hub card links to it); `--source-url` overrides it.
SOURCE_URL = "https://gzn00417.github.io/GVE/"
AUDIENCES = ("repository", "hub")
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


def scores_source(results: dict[str, Any], results_path: Path, repository: bool = True, source_url: str = "") -> str:
    """The sentence under the results table that says where its scores come from (without repository paths in the
    Hub's rendering)."""
    published = results_path.resolve() == RESULTS_PATH.resolve()
    if not repository:
        if published:
            return "The scores are those published with GVE."
        return f"The scores were measured by the evaluation of the [source repository]({source_url})."
    if published:
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
    audience: str = "repository",
    source_url: str = SOURCE_URL,
    storage_path: str | Path = STORAGE_PATH,
) -> str:
    """The full card of `model_id`: the YAML metadata block, then the rendered template, for `audience` ("repository":
    this repository's README.md; "hub": the card of a checkpoint folder pushed to the Hub, see the module docstring).

    The results row named like the model id's last part (`GVE-7B`) becomes the `model-index` metadata; a model
    without a row (a new fine-tune, a test build) gets a card without `model-index`.

    The output is a function of the inputs only (results file, template, the limits tables of handler.py and
    processing_gve.py, requirements.txt and constraints.txt, the memory and storage results at `storage_path`, the
    GPU check's results),
    so rendering twice gives identical text.
    """
    from huggingface_hub import ModelCard

    if audience not in AUDIENCES:
        raise ModelCardError(f"the audience must be one of {', '.join(AUDIENCES)}, got {audience!r}")
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
        "scores_source": scores_source(results, results_path, audience == "repository", source_url),
        "abilities": [column for column in results["columns"] if column["key"] != overall],
        "results_table": results_table(results),
        "handler_limits_table": handler_limits_table(),
        "media_limits_table": media_limits_table(),
        "transformers_requirement": requirement,
        "transformers_tested": tested,
        "repository": audience == "repository",
        "source_url": source_url,
        **storage_context(storage_path),
        **gpu_context(),
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
