"""Helpers of the card tests: the seed results, the script, results files made for a test."""

import copy
import json
import subprocess
import sys
from pathlib import Path

from gve_tools.card.render import RESULTS_PATH
from gve_tools.repo import ROOT

SCRIPT = ROOT / "scripts" / "make_model_card.py"
RESULTS = json.loads(RESULTS_PATH.read_text())
KEYS = ["AVG", "TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR"]


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def scores(name: str, results: dict = RESULTS) -> dict[str, float]:
    return next(model["scores"] for model in results["models"] if model["name"] == name)


def table_rows(text: str) -> dict[str, list[str]]:
    """The results table of a card: model name (bold removed) -> its score cells, as written."""
    header = "| Model | " + " | ".join(KEYS) + " |"
    lines = text.split(header, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    rows = {}
    for line in lines:
        name, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("*")] = cells
    return rows


def synthetic_results(tmp_path: Path, rows: dict[str, list[float]], columns=("AVG", "X")) -> Path:
    data = copy.deepcopy(RESULTS)
    data["columns"] = [{"key": key, "name": f"column {key}", "group": "test"} for key in columns]
    data["models"] = [
        {
            "name": name,
            "params": None,
            "ours": name.startswith("GVE"),
            "scores": dict(zip(columns, values, strict=True)),
        }
        for name, values in rows.items()
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    return path


def malformed(tmp_path: Path, change) -> Path:
    data = copy.deepcopy(RESULTS)
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path
