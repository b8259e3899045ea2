"""gve_tools.evaluation.runner: an end-to-end run (results file, details, tables, cache, model card), its scores."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gve_tools import models
from gve_tools.card import load_results
from gve_tools.evaluation.cli import main
from gve_tools.evaluation.format import METRICS, load_dataset
from gve_tools.evaluation.metrics import rank_metrics
from gve_tools.evaluation.runner import details_file, evaluate
from gve_tools.models import ModelLoadError, resolve_model
from gve_tools.repo import ROOT, query_instruction


def test_a_missing_bundled_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_MODEL", ROOT / "bundled" / "not-here")
    with pytest.raises(ModelLoadError, match=r"bundled tiny model bundled/not-here is missing.*--model"):
        resolve_model(None)
    with pytest.raises(ModelLoadError, match="no such checkpoint folder"):
        resolve_model(str(tmp_path / "nothing"))
    assert resolve_model("Alibaba-NLP/GVE-3B") == "Alibaba-NLP/GVE-3B"


@pytest.mark.slow
def test_end_to_end_results_tables_cache_and_model_card(benchmark, tiny_path, tmp_path, capsys, counted):
    output = tmp_path / "out" / "results.json"
    args = [str(benchmark), "--model", str(tiny_path), "--cache-dir", str(tmp_path / "cache")]
    args += ["--output", str(output), "--model-name", "gve-tiny-eval", "--batch-size", "4"]
    assert main(args) == 0
    first = capsys.readouterr()
    # 4 text queries + 4 videos (TXT-mini); 2 composed queries with their own instruction (CMP-mini) - the
    # clips are shared, with the same (default) document instruction, so they are embedded once
    assert sum(counted) == 10
    assert "embeddings: 0 cached, 10 to compute" in first.out

    results = load_results(output)  # what make_model_card.py reads
    assert [c["key"] for c in results["columns"]] == ["AVG", "TXT", "CMP", "CG"]
    assert results["benchmark"]["name"] == "MiniBench" and results["benchmark"]["num_datasets"] == 2
    (row,) = results["models"]
    assert row["name"] == "gve-tiny-eval" and row["ours"] is True and row["params"].endswith(("K", "M"))
    details = json.loads(details_file(output).read_text())
    assert details["model"]["content"].startswith("stat:") and details["model"]["settings"]["dtype"] == "float32"
    txt, cmp = details["datasets"]["TXT-mini"], details["datasets"]["CMP-mini"]
    assert txt["chance_level"] == pytest.approx(0.25) and txt["documents"] == 4 and txt["queries"] == 4
    assert cmp["metric"] == "nDCG@5" and cmp["score"] == cmp["scores"]["nDCG@5"]
    assert row["scores"]["AVG"] == pytest.approx((txt["score"] + cmp["score"]) / 2, abs=1e-6)
    assert row["scores"]["TXT"] == row["scores"]["CG"] == pytest.approx(txt["score"], abs=1e-6)
    assert details["summary"]["CMP"]["chance"] == pytest.approx(cmp["chance_level"])

    # the terminal tables: every dataset with its metrics and chance, every ability, AVG
    lines = first.out.splitlines()
    ability_rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["AVG"], ["TXT"], ["CMP"])}
    assert set(ability_rows) == {"AVG", "TXT", "CMP"}
    assert float(ability_rows["TXT"][2]) == pytest.approx(0.25, abs=5e-4)  # chance beside the score
    assert any(line.startswith("TXT-mini") and "R@1" in line for line in lines)
    assert "Embedding" in first.err and "Evaluating" in first.err  # progress bars

    # a re-run takes every embedding from the cache and gives the same results
    assert counted.loads == 1
    counted.clear()
    counted.loads = 0
    assert main(args) == 0
    second = capsys.readouterr()
    assert counted == [] and counted.loads == 0  # not even the weights are loaded
    assert "embeddings: 10 cached, 0 to compute" in second.out
    assert load_results(output) == results

    # the model card regenerates from the results file; the committed README keeps the real GVE table
    card_path = tmp_path / "card" / "README.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_model_card.py"), "--results", str(output)]
        + ["--model-id", "local/gve-tiny-eval", "--output", str(card_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    card = card_path.read_text()
    assert "| **gve-tiny-eval** |" in card and "| Model | AVG | TXT | CMP | CG |" in card
    assert "model-index" in card and "MiniBench" in card
    readme = (ROOT / "README.md").read_text()
    assert "| **GVE-7B** |" in readme and "gve-tiny-eval" not in readme


@pytest.mark.slow
def test_scores_are_those_of_model_encode_with_the_datasets_instructions(benchmark, tiny_path, model, tmp_path):
    details = evaluate(benchmark, str(tiny_path), datasets=["TXT-mini"], cache_dir=None, output=None)
    dataset = load_dataset(benchmark / "txt")
    queries = model.encode([q.fields["text"] for q in dataset.queries], instruction=query_instruction())
    documents = model.encode([d.fields["video"] for d in dataset.corpus])  # the checkpoint's default instruction
    relevance = np.eye(4, dtype=int)  # query i is about clip i
    expected = rank_metrics((queries @ documents.T).numpy(), relevance)
    for name in METRICS:
        assert details["datasets"]["TXT-mini"]["scores"][name] == pytest.approx(expected[name].mean(), abs=1e-6)


def test_compact_vectors_reuse_the_embeddings_and_are_recorded(benchmark, tiny_path, tmp_path, capsys, counted):
    cache = tmp_path / "cache"
    evaluate(benchmark, str(tiny_path), datasets=["TXT-mini"], cache_dir=cache, output=None, report=False)
    counted.clear()
    output = tmp_path / "binary.json"
    args = [str(benchmark), "--model", str(tiny_path), "--cache-dir", str(cache), "--datasets", "TXT-mini"]
    assert main([*args, "--output", str(output), "--vectors", "binary", "--rescore", "2"]) == 0
    assert counted == []  # the scoring changed, not the embeddings
    assert "TXT-mini" in capsys.readouterr().out
    assert load_results(output)["source"].endswith("float32 on cpu, binary+rescore2 vectors.")
    details = json.loads(details_file(output).read_text())
    assert details["model"]["vectors"] == {"kind": "binary", "rescore": 2, "dims": None}
