"""The results file of a card: its checks, and the marks of the results table (gve_tools.card.results)."""

import copy

import pytest

from gve_tools.card.render import (
    render_model_card,
)
from gve_tools.card.results import ModelCardError, column_marks, load_results, results_table
from tests.card.support import KEYS, RESULTS, malformed, scores, synthetic_results, table_rows


def test_seed_results_are_complete():
    """All 16 rows of the published card's table, every column, and where the numbers come from."""
    names = [model["name"] for model in RESULTS["models"]]
    assert names[0] == "CLIP4Clip" and names[-1] == "GVE-7B" and len(names) == 16
    assert [column["key"] for column in RESULTS["columns"]] == KEYS
    assert all(list(model["scores"]) == KEYS for model in RESULTS["models"])
    assert "published GVE model card" in RESULTS["source"]
    assert scores("GVE-7B")["AVG"] == 0.600 and scores("CLIP4Clip")["VIS"] == 0.714
    assert {model["name"]: model["params"] for model in RESULTS["models"] if model["params"]} == {
        "Unite-7B": "8.3B",
        "GVE-3B": "3.8B",
        "GVE-7B": "8.3B",
    }


def test_marks_on_synthetic_results_with_ties(tmp_path):
    """Ties share a mark; the second-highest is the next lower distinct score (so a tie for first still leaves
    an underlined second), and scores are compared as printed (to 3 decimals)."""
    path = synthetic_results(
        tmp_path,
        {
            "A": [0.5, 0.9],
            "B": [0.7, 0.9],  # X: tied for best with A
            "GVE-7B": [0.8, 0.3],
            "C": [0.7, 0.8],  # AVG: tied for second with B
            "D": [0.1, 0.80001],  # X: equal to C's 0.800 once printed
        },
    )
    results = load_results(path)
    assert column_marks(results) == {
        "AVG": {"GVE-7B": "best", "B": "second", "C": "second"},
        "X": {"A": "best", "B": "best", "C": "second", "D": "second"},
    }
    table = results_table(results).splitlines()
    assert table[:2] == ["| Model | AVG | X |", "| --- | --- | --- |"]
    assert table[2:] == [
        "| A | 0.500 | **0.900** |",
        "| B | <u>0.700</u> | **0.900** |",
        "| **GVE-7B** | **0.800** | 0.300 |",
        "| C | <u>0.700</u> | <u>0.800</u> |",
        "| D | 0.100 | <u>0.800</u> |",
    ]


def test_marks_when_all_scores_are_equal(tmp_path):
    results = load_results(synthetic_results(tmp_path, {"A": [0.5, 0.5], "GVE-7B": [0.5, 0.5]}))
    assert column_marks(results)["AVG"] == {"A": "best", "GVE-7B": "best"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["models"][6]["scores"].pop("CMP"), "models[6] (GME-2B) has no score for column 'CMP'"),
        (lambda d: d["models"][0]["scores"].update(VIS="0.714"), "models[0] (CLIP4Clip).scores.VIS must be a number"),
        (lambda d: d["models"][0]["scores"].update(VIS=71.4), "models[0] (CLIP4Clip).scores.VIS must be a number"),
        (lambda d: d["models"][1]["scores"].update(XYZ=0.5), "models[1] (ViCLIP).scores has unknown column(s) ['XYZ']"),
        (lambda d: d["models"][2].pop("name"), "models[2] needs a non-empty string 'name'"),
        (lambda d: d["models"].append(copy.deepcopy(d["models"][0])), "model 'CLIP4Clip' appears twice"),
        (lambda d: d["models"][3].update(param="1B"), "models[3] (LanguageBind) has unknown field(s) ['param']"),
        (lambda d: d.pop("source"), "the top level has no 'source'"),
        (lambda d: d["benchmark"].pop("dataset"), "benchmark has no 'dataset'"),
        (lambda d: d["benchmark"].update(overall_column="MEAN"), "benchmark.overall_column 'MEAN' is not a column"),
        (lambda d: d["columns"][1].pop("name"), "columns[1] has no 'name'"),
    ],
)
def test_malformed_results_are_named(tmp_path, change, message):
    path = malformed(tmp_path, change)
    with pytest.raises(ModelCardError) as error:
        render_model_card(results_path=path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_real_results_table_marks(card):
    rows = table_rows(card)
    assert list(rows) == [model["name"] for model in RESULTS["models"]]
    assert rows["GVE-7B"][KEYS.index("AVG")] == "**0.600**"
    assert rows["GVE-3B"][KEYS.index("AVG")] == "<u>0.571</u>"
    assert rows["CLIP4Clip"][KEYS.index("VIS")] == "**0.714**"
    assert rows["UniME-7B"][KEYS.index("VIS")] == "<u>0.702</u>"
    assert rows["GME-2B"][KEYS.index("CMP")] == "**0.345**" and rows["GME-7B"][KEYS.index("CMP")] == "<u>0.341</u>"
    assert rows["Unite-7B"][KEYS.index("PR")] == "**0.425**" and rows["GVE-7B"][KEYS.index("PR")] == "<u>0.419</u>"
    # every column: exactly the max is bold and exactly the second-highest distinct value underlined
    for column, key in enumerate(KEYS):
        values = sorted({model["scores"][key] for model in RESULTS["models"]}, reverse=True)
        for model in RESULTS["models"]:
            cell, value = rows[model["name"]][column], model["scores"][key]
            expected = "**{:.3f}**" if value == values[0] else "<u>{:.3f}</u>" if value == values[1] else "{:.3f}"
            assert cell == expected.format(value), (model["name"], key)
    assert "| **GVE-7B** |" in card and "| GME-7B |" in card  # GVE's own models in bold
