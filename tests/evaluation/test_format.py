"""gve_tools.evaluation.format: a valid dataset loads; every fault is named by its file, line and field."""

import json
from pathlib import Path

import pytest

from gve_tools.evaluation.format import EvaluationError, load_benchmark, load_dataset
from tests.evaluation.support import text_dataset, write_jsonl


def test_a_valid_dataset_loads(tmp_path):
    dataset = load_dataset(text_dataset(tmp_path / "toy"))
    assert dataset.ranking == "local" and dataset.metric == "MRR" and dataset.abilities == ["TXT"]
    assert dataset.qrels == {"q1": {"d1": 2}, "q2": {"d2": 1}}
    assert dataset.candidates == {"q1": ["d1", "d2"], "q2": ["d2", "d3"]}
    assert dataset.corpus[0].fields["image"] == str((tmp_path / "toy" / "blue.png").resolve())
    assert dataset.modalities == {"queries": ["text"], "corpus": ["image", "text"]}


def edit_jsonl(name: str, change):
    def apply(folder: Path) -> None:
        path = folder / name
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        change(rows)
        write_jsonl(path, rows)

    return apply


def edit_spec(**changes):
    def apply(folder: Path) -> None:
        spec = json.loads((folder / "dataset.json").read_text())
        spec.update(changes)
        (folder / "dataset.json").write_text(json.dumps(spec))

    return apply


BAD_DATASETS = {
    "unknown doc in qrels": (
        edit_jsonl("qrels.jsonl", lambda rows: rows[1].update(doc_id="d9")),
        r"qrels\.jsonl:2: doc_id 'd9' is not in corpus\.jsonl",
    ),
    "unknown query in qrels": (
        edit_jsonl("qrels.jsonl", lambda rows: rows[0].update(query_id="q7")),
        r"qrels\.jsonl:1: query_id 'q7' is not in queries\.jsonl",
    ),
    "duplicate query id": (
        edit_jsonl("queries.jsonl", lambda rows: rows[1].update(id="q1")),
        r"queries\.jsonl:2: id 'q1' appears twice \(first on line 1\)",
    ),
    "missing media": (
        edit_jsonl("corpus.jsonl", lambda rows: rows[0].update(image="gone.png")),
        r"corpus\.jsonl:1: item 'd1': image file 'gone\.png' not found",
    ),
    "no content": (
        edit_jsonl("queries.jsonl", lambda rows: rows[0].pop("text")),
        r"queries\.jsonl:1: item 'q1' has none of 'text', 'image', 'video'",
    ),
    "integer id": (
        edit_jsonl("corpus.jsonl", lambda rows: rows[2].update(id=3)),
        r"corpus\.jsonl:3: 'id' must be a non-empty string, got 3$",  # an int (a string would show quoted)
    ),
    "unknown item field": (
        edit_jsonl("corpus.jsonl", lambda rows: rows[2].update(caption="x")),
        r"corpus\.jsonl:3: unknown field\(s\) \['caption'\]",
    ),
    "empty candidates": (
        edit_jsonl("candidates.jsonl", lambda rows: rows[1].update(doc_ids=[])),
        r"candidates\.jsonl:2: 'doc_ids' must be a non-empty list",
    ),
    "unknown candidate": (
        edit_jsonl("candidates.jsonl", lambda rows: rows[1]["doc_ids"].append("d8")),
        r"candidates\.jsonl:2: doc_ids: 'd8' is not in corpus\.jsonl",
    ),
    "relevant doc not a candidate": (
        edit_jsonl("candidates.jsonl", lambda rows: rows[0].update(doc_ids=["d2", "d3"])),
        r"candidates\.jsonl:1: query 'q1': relevant doc\(s\) \['d1'\] \(qrels\.jsonl\) are not among its candidates",
    ),
    "query without candidates": (
        edit_jsonl("candidates.jsonl", lambda rows: rows.pop()),
        r"candidates\.jsonl: query 'q2' \(.*queries\.jsonl:2\) has no candidates",
    ),
    "query without relevant doc": (
        edit_jsonl("qrels.jsonl", lambda rows: rows[1].update(relevance=0)),
        r"qrels\.jsonl: query 'q2' \(.*queries\.jsonl:2\) has no relevant document",
    ),
    "negative relevance": (
        edit_jsonl("qrels.jsonl", lambda rows: rows[1].update(relevance=-1)),
        r"qrels\.jsonl:2: 'relevance' must be an integer >= 0, got -1$",
    ),
    "duplicate judgment": (
        edit_jsonl("qrels.jsonl", lambda rows: rows.append(dict(rows[0]))),
        r"qrels\.jsonl:3: the pair \('q1', 'd1'\) appears twice \(first on line 1\)",
    ),
    "candidates with global ranking": (
        edit_spec(ranking="global"),
        r"candidates\.jsonl: candidates are only read with \"ranking\": \"local\"",
    ),
    "bad ranking": (edit_spec(ranking="pairwise"), r"dataset\.json: 'ranking' must be 'global' or 'local'"),
    "bad metric": (edit_spec(metric="P@5"), r"dataset\.json: 'metric' must be one of \['R@1'"),
    "name of the wrong type": (edit_spec(name=3), r"dataset\.json: 'name' has the wrong type: 3$"),
    "missing abilities": (
        lambda folder: (folder / "dataset.json").write_text(json.dumps({"name": "toy", "ranking": "global"})),
        r"dataset\.json: missing field 'abilities'",
    ),
    "unknown dataset field": (edit_spec(rankng="local"), r"dataset\.json: unknown field\(s\) \['rankng'\]"),
    "broken JSON line": (
        lambda folder: (folder / "corpus.jsonl").write_text('{"id": "d1", "text": "x"}\n{"id": \n'),
        r"corpus\.jsonl:2: not valid JSON",
    ),
    "missing qrels": (lambda folder: (folder / "qrels.jsonl").unlink(), r"qrels\.jsonl: missing"),
}


@pytest.mark.parametrize("case", list(BAD_DATASETS))
def test_dataset_errors_name_the_file_line_and_field(tmp_path, case):
    folder = text_dataset(tmp_path / "toy")
    change, message = BAD_DATASETS[case]
    change(folder)
    with pytest.raises(EvaluationError, match=message):
        load_dataset(folder)


def test_benchmark_errors(tmp_path):
    with pytest.raises(EvaluationError, match="no dataset folders"):
        load_benchmark(tmp_path)
    text_dataset(tmp_path / "a")
    text_dataset(tmp_path / "b", ranking="global")
    with pytest.raises(EvaluationError, match=r"dataset name 'toy' is also used by"):
        load_benchmark(tmp_path)
    with pytest.raises(EvaluationError, match=r"--datasets: unknown dataset\(s\) \['nope'\]"):
        load_benchmark(tmp_path, ["nope"])
    info, datasets = load_benchmark(tmp_path, ["b"])  # by folder name
    assert [d.ranking for d in datasets] == ["global"] and info["name"] == tmp_path.name
