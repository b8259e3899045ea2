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
import shlex
import sys
from pathlib import Path

from gve_tools.card.render import (
    BASE_MODEL,
    MODEL_ID,
    OUTPUT_PATH,
    REGENERATE,
    RESULTS_PATH,
    SOURCE_URL,
    TEMPLATE_PATH,
    _in_repo,
    render_model_card,
    stale_summary,
)
from gve_tools.card.results import ModelCardError, load_results, model_name_of, model_row
from gve_tools.text import docstring_parser


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
        "--hub",
        action="store_true",
        help="the card of a checkpoint folder for the Hub: only what a Hub reader can use, with a link to the source "
        f"repository (--source-url, default {SOURCE_URL}) for the rest; without it, this repository's README",
    )
    parser.add_argument("--source-url", default=SOURCE_URL, metavar="URL", help=argparse.SUPPRESS)
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
        audience = "hub" if args.hub else "repository"
        text = render_model_card(args.results, args.template, args.model_id, args.base_model, audience, args.source_url)
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
