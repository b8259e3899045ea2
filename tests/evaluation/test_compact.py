"""gve_tools.benchmark.compact: every setting evaluated on the same embeddings, its change from float32, the goals."""

import json
import shutil

import pytest

from gve_tools.benchmark.compact import main, measure_retrieval, vector_settings
from gve_tools.errors import GVEToolsError
from gve_tools.evaluation.runner import evaluate
from gve_tools.vectors import VectorFormat
from tests.evaluation.support import write_dataset


def test_each_setting_is_its_evaluation_and_its_change_from_float32(benchmark, tiny_path, tmp_path, counted):
    cache = tmp_path / "cache"
    result = measure_retrieval(benchmark, str(tiny_path), ["int8"], cache_dir=cache)
    dimension = result["dimension"]
    assert dimension == 64  # the tiny checkpoint's text hidden size
    expected = ["float32", "int8", "binary", "binary+rescore100", "binary+rescore10", "float32@32", "float32@16"]
    assert [row["setting"] for row in result["rows"]] == [*expected, "float32@8", "int8 weights"]
    assert [fmt.label for fmt in vector_settings(dimension)] == [*expected, "float32@8"]
    assert counted.loads == 2  # the float weights once for every vector setting, then the int8 weights
    rows = {row["setting"]: row for row in result["rows"]}
    binary = evaluate(benchmark, str(tiny_path), cache_dir=cache, output=None, vectors=VectorFormat("binary"))
    for key, value in binary["summary"].items():
        assert rows["binary"]["scores"][key] == pytest.approx(value["score"], abs=1e-6)
        change = rows["binary"]["scores"][key] - rows["float32"]["scores"][key]
        assert rows["binary"]["change"][key] == pytest.approx(change, abs=1e-6)
    assert "change" not in rows["float32"]
    assert rows["int8"]["goal"] == {"most_lost": 0.01, "met": rows["int8"]["worst_change"] >= -0.01}
    assert "goal" in rows["binary+rescore100"] and "goal" not in rows["binary"]
    assert result["documents"] == [2, 4] and result["queries"] == [2, 4]  # CMP-mini: 2 queries, 2 candidates each


def test_the_command_needs_the_vector_index_figures(benchmark, tmp_path, capsys):
    missing = tmp_path / "vector-index.json"
    with pytest.raises(SystemExit) as exit_info:
        main([str(benchmark), "--vector-index", str(missing), "--output", str(tmp_path / "out.json")])
    assert exit_info.value.code == 2
    assert f"{missing} does not exist: run scripts/benchmark_vectors.py" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
    json.dumps(vector_settings(128)[0].as_json())  # the settings are JSON for the results file


def test_moment_datasets_are_left_out_and_named(benchmark, media, tiny_path, tmp_path):
    """The synthetic splits hold MR and VCMR, which rank segments with float32 vectors only: the rest is measured."""
    folder = tmp_path / "bench"
    shutil.copytree(benchmark, folder)
    shutil.copy(media["long_video"], folder / "long.mp4")
    write_dataset(
        folder / "moments",
        {"name": "MR-mini", "abilities": ["MR"], "ranking": "global"},
        [{"id": "q0", "text": "the square enters"}],
        [{"id": "v", "video": "../long.mp4"}],
        [{"query_id": "q0", "doc_id": "v", "relevance": 1, "start": 0, "end": 3.5}],
    )
    cache = tmp_path / "cache"
    result = measure_retrieval(folder, str(tiny_path), [], cache_dir=cache)
    assert result["left_out"] == ["MR-mini"]
    without = evaluate(benchmark, str(tiny_path), cache_dir=cache, output=None, report=False)
    assert result["rows"][0]["scores"] == pytest.approx({k: v["score"] for k, v in without["summary"].items()})

    shutil.rmtree(folder / "txt")
    shutil.rmtree(folder / "cmp")
    with pytest.raises(GVEToolsError, match="every dataset is a moment dataset; compact vectors score none of them"):
        measure_retrieval(folder, str(tiny_path), [], cache_dir=cache)
