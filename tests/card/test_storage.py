"""The card's "Memory and storage" section is generated from the measured results file (gve_tools.card.storage)."""

import json

import pytest

from gve_tools.card.render import render_model_card
from gve_tools.card.results import ModelCardError
from gve_tools.card.storage import STORAGE_PATH, load_storage


def section(card: str) -> str:
    return card[card.index("## Memory and storage") : card.index("## The original model card's usage")]


def test_the_section_shows_the_measured_figures(card):
    measured = load_storage()
    text = section(card)
    for name in ("GVE-3B", "GVE-7B"):
        for setting in ("float", "int8/cuda", "int4/cuda", "int8/cpu"):
            assert f"{measured['weights'][name]['weights'][setting]['gib']:.1f} GiB" in text
    quality = text[text.index("| setting |") :].splitlines()
    for row in measured["retrieval"]["rows"]:
        line = next(line for line in quality if line.startswith(f"| {row['setting']} |"))
        assert [cell.split()[0] for cell in line.strip("| ").split(" | ")[1:]] == [
            f"{row['scores'][key]:.3f}" for key in measured["retrieval"]["chance"]
        ]
    seven_b = {row["vectors"]: row for row in measured["vector_index"]["results"] if row["model"] == "GVE-7B"}
    line = next(line for line in text.splitlines() if line.startswith("| binary+rescore100 |"))
    assert f"{seven_b['binary+rescore100']['per_1m']['index_bytes'] / 1e9:.2f} GB" in line
    assert f"{seven_b['binary+rescore100']['recall_at_10']:.3f}" in line
    assert measured["command"] in text  # the command that produced them (repository rendering)


def test_the_hub_card_has_the_figures_without_repository_commands():
    text = section(render_model_card(audience="hub"))
    assert "| int8 weights |" in text and "GiB" in text
    assert "scripts/" not in text and "gve_tools" not in text


def test_a_change_in_the_results_file_changes_the_card(tmp_path):
    measured = load_storage()
    row = next(row for row in measured["retrieval"]["rows"] if row["setting"] == "binary")
    row["change"]["TXT"] = row["worst_change"] = -0.5
    measured["weights"]["GVE-7B"]["weights"]["int4/cuda"]["gib"] = 1.234
    changed = tmp_path / "storage.json"
    changed.write_text(json.dumps(measured))
    text = section(render_model_card(storage_path=changed))
    assert "0.500 with sign bits" in text
    assert "GVE-7B to 8.4 GiB in 8 bits or 1.2 GiB in 4 bits" in text


def test_an_incomplete_results_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "storage.json"
    broken.write_text(json.dumps({key: value for key, value in load_storage().items() if key != "vector_index"}))
    with pytest.raises(ModelCardError, match="missing vector_index; run scripts/benchmark_compact.py"):
        render_model_card(storage_path=broken)
    with pytest.raises(ModelCardError, match="cannot read the memory and storage results"):
        render_model_card(storage_path=tmp_path / "none.json")
    assert STORAGE_PATH.name == "memory-and-storage.json"
