"""Rendering the card: metadata, sections, limits tables, template errors (gve_tools.card.render)."""

import copy
import json
import re

import pytest
import yaml
from huggingface_hub import ModelCard

from gve_tools.card.cli import main
from gve_tools.card.render import (
    TEMPLATE_PATH,
    handler_limits_table,
    media_limits_table,
    render_model_card,
)
from gve_tools.card.results import ModelCardError
from gve_tools.repo import ROOT
from tests.card.support import run_script, scores, synthetic_results


def test_rendering_is_reproducible(card, tmp_path):
    assert render_model_card() == card
    for name in ("a.md", "b.md"):
        assert main(["--output", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.md").read_bytes() == (tmp_path / "b.md").read_bytes() == card.encode()


def test_metadata_round_trips_through_model_card(card):
    data = ModelCard(card).data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "sentence-similarity"
    assert {"custom_code", "video"} <= set(data["tags"])
    assert data["license"] == "apache-2.0" and data["language"] == "en"
    assert data["base_model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and data["base_model_relation"] == "finetune"
    assert "Alibaba-NLP/UVRB" in data["datasets"]
    widget = data["widget"][0]
    assert isinstance(widget["source_sentence"], str) and len(widget["sentences"]) >= 2
    # the YAML block keeps a fixed key order, model-index last
    keys = list(yaml.safe_load(card.split("---\n", 2)[1]))
    assert keys[:2] == ["library_name", "pipeline_tag"] and keys[-1] == "model-index" and set(keys) == set(data)

    (index,) = data["model-index"]
    assert index["name"] == "GVE-7B"
    (result,) = index["results"]
    assert result["task"]["type"] and result["dataset"] == {"name": "UVRB", "type": "Alibaba-NLP/UVRB"}
    values = {metric["type"]: metric["value"] for metric in result["metrics"]}
    assert values == {key.lower(): value for key, value in scores("GVE-7B").items()}
    assert values["avg"] == 0.600
    assert all(metric["type"] and isinstance(metric["value"], float) for metric in result["metrics"])

    # re-rendered from its parsed data, the card keeps the same metadata and text
    parsed = ModelCard(card)
    assert str(parsed) == card
    assert ModelCard(str(parsed)).data.to_dict() == data
    assert parsed.text.lstrip("\n").startswith("# ")


def test_metadata_from_card_data_alone(card):
    """Rendering the metadata again from a ModelCardData built out of the parsed dict gives the same YAML."""
    from huggingface_hub import ModelCardData

    data = ModelCard(card).data.to_dict()
    yaml_block = card.split("---\n", 2)[1].strip()
    order = list(yaml.safe_load(yaml_block))
    assert ModelCardData(**copy.deepcopy(data)).to_yaml(original_order=order) == yaml_block


def test_card_for_gve_3b_uses_its_id_base_and_scores():
    text = render_model_card(model_id="Alibaba-NLP/GVE-3B", base_model="Qwen/Qwen2.5-VL-3B-Instruct")
    data = ModelCard(text).data.to_dict()
    assert data["base_model"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    (index,) = data["model-index"]
    assert index["name"] == "GVE-3B"
    values = {metric["type"]: metric["value"] for metric in index["results"][0]["metrics"]}
    assert values == {key.lower(): value for key, value in scores("GVE-3B").items()} and values["avg"] == 0.571
    snippets = "\n".join(re.findall(r"```(?:python|bash)\n(.*?)```", text, flags=re.S))
    assert snippets.count("Alibaba-NLP/GVE-3B") >= 6 and "Alibaba-NLP/GVE-7B" not in snippets
    assert "This card is for **Alibaba-NLP/GVE-3B** (3.8B parameters)" in text
    assert "GVE-3B averages 0.571 (AVG), rank 2 of the 16 models" in text


def test_body_has_every_section(card):
    body = card.split("\n---\n", 1)[1]
    for heading in (
        "# GVE: General Video Embedder",
        "## About GVE",
        "## Usage",
        "## sentence-transformers",
        "## Inference Endpoints",
        "## vLLM",
        "## What an embedding is",
        "## Results on UVRB",
        "## Loading",
        "## Citation",
    ):
        assert f"\n{heading}\n" in body, heading
    assert "Pin `revision=`" in body and "<|im_start|>assistant\n<|endoftext|>" in body
    assert "`transformers>=5.23,<6` (tested with 5.23.0)" in body
    for ability in ("TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR"):
        assert f"- **{ability}**: " in body
    assert "@misc{guo2025gve," in body
    assert "{{" not in body and "{%" not in body and "{#" not in body  # every placeholder filled


def test_limits_tables_come_from_the_handler_and_the_processor(card):
    for table in (handler_limits_table(), media_limits_table()):
        assert table.startswith("| limit | environment variable | default | what it bounds |\n| --- |")
        assert f"\n{table}\n" in card
    assert handler_limits_table() != media_limits_table()


def test_the_card_says_where_its_scores_come_from(card, tmp_path):
    assert "[UVRB](https://huggingface.co/datasets/Alibaba-NLP/UVRB), the Universal" in card
    assert "The scores are those published with GVE; `model_card/uvrb_results.json` records their source." in card
    # results measured here by scripts/evaluate.py: their own source sentence, and no link to a Hub dataset
    path = synthetic_results(tmp_path, {"GVE-7B": [0.8, 0.3]})
    data = json.loads(path.read_text())
    data["source"] = "scripts/evaluate.py on the local benchmark B (2 datasets): model m, float32 on cpu."
    data["benchmark"].update(name="B", dataset="local/b")
    path.write_text(json.dumps(data))
    text = render_model_card(results_path=path)
    assert f"The scores come from `{path}`: {data['source']}" in text
    assert "published with GVE" not in text and "huggingface.co/datasets/local" not in text
    assert "\nB, the Universal Video Retrieval Benchmark, has" in text
    data["benchmark"]["dataset"] = "someone/b"  # a Hub dataset is linked
    path.write_text(json.dumps(data))
    assert "[B](https://huggingface.co/datasets/someone/b), the" in render_model_card(results_path=path)


def test_a_model_without_results_gets_a_card_without_model_index(tmp_path):
    output = tmp_path / "out.md"
    result = run_script("--model-id", "someone/GVE-7B-ft", "--output", str(output))
    assert result.returncode == 0 and "no model in" in result.stderr and "'GVE-7B-ft'" in result.stderr
    text = output.read_text()
    data = ModelCard(text).data.to_dict()
    assert "model-index" not in data and data["pipeline_tag"] == "sentence-similarity"
    assert "GVE-7B-ft has no published UVRB scores" in text and "| **GVE-7B** | **0.600** |" in text
    assert 'AutoModel.from_pretrained("someone/GVE-7B-ft"' in text
    # the row is found whatever the case of the id
    lower = ModelCard(render_model_card(model_id="Alibaba-NLP/gve-7b")).data.to_dict()
    assert lower["model-index"][0]["name"] == "GVE-7B"


def test_bad_model_id_is_refused(tmp_path):
    result = run_script("--model-id", "Alibaba-NLP/GVE 7B", "--output", str(tmp_path / "out.md"))
    assert result.returncode == 2 and "model id must be a non-empty repo id without spaces" in result.stderr


def test_template_errors_are_named(tmp_path):
    template = tmp_path / "template.md"
    template.write_text("# GVE\n\n{{ no_such_placeholder }}\n")
    with pytest.raises(ModelCardError, match=r"template\.md: unknown placeholder: 'no_such_placeholder'"):
        render_model_card(template_path=template)
    template.write_text("# GVE\n\n{% for x in %}\n")
    with pytest.raises(ModelCardError, match=r"template\.md:3: template syntax error"):
        render_model_card(template_path=template)


def test_template_is_the_default():
    assert TEMPLATE_PATH == ROOT / "model_card" / "template.md" and TEMPLATE_PATH.is_file()


REPOSITORY_ONLY = ("make demo", "make test", "`make", "scripts/", "bundled/", "benchmarks/", "model_card/", "tests/")
HUB_SECTIONS = ("## Usage", "## sentence-transformers", "## Inference Endpoints", "## vLLM", "## What an embedding is")


def test_the_hub_rendering_shows_only_what_is_on_the_hub(card):
    """The card of a checkpoint folder: loading, sentence-transformers, vLLM, endpoints, the prompt format, results
    and citation, with a link to the source repository for the rest; none of the repository's own files."""
    hub = render_model_card(audience="hub", source_url="https://example.com/gve-source")
    for reference in REPOSITORY_ONLY:
        assert reference not in hub, reference
        assert reference in card, reference  # the README keeps them
    for section in (*HUB_SECTIONS, "## Results on UVRB", "## Citation"):
        assert section in hub and section in card
    for section in ("## Offline: the bundled tiny GVE", "## Embedding a corpus at scale", "## Development"):
        assert section not in hub and section in card
    assert "[source repository](https://example.com/gve-source)" in hub
    assert hub.split("\n---\n", 1)[0] == card.split("\n---\n", 1)[0]  # the same metadata block
    synthetic = render_model_card(ROOT / "benchmarks" / "synthetic-results.json", audience="hub", model_id="local/m")
    assert not any(reference in synthetic for reference in REPOSITORY_ONLY)
    with pytest.raises(ModelCardError, match="the audience must be one of repository, hub, got 'web'"):
        render_model_card(audience="web")
