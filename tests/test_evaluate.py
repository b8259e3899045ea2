"""scripts/evaluate.py: metrics against pytrec_eval, chance levels, dataset validation, an end-to-end run."""

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from gve_tools import evaluate as ev
from gve_tools.make_model_card import load_results
from gve_tools.repo import ROOT
from gve_tools.synthetic_media import moving_square, write_image, write_video

PYTREC = {
    "R@1": "success_1",
    "R@5": "success_5",
    "R@10": "success_10",
    "nDCG@5": "ndcg_cut_5",
    "nDCG@10": "ndcg_cut_10",
    "MRR": "recip_rank",
}


def pytrec_metrics(scores, relevance, valid=None) -> dict[str, np.ndarray]:
    """The per-query metrics of score matrices, by pytrec_eval (trec_eval)."""
    valid = np.ones(scores.shape, dtype=bool) if valid is None else valid
    qrels, run = {}, {}
    for q in range(scores.shape[0]):
        docs = np.flatnonzero(valid[q])
        qrels[f"q{q}"] = {f"d{d}": int(relevance[q, d]) for d in docs if relevance[q, d] > 0}
        run[f"q{q}"] = {f"d{d}": float(scores[q, d]) for d in docs}
    measured = pytrec_eval.RelevanceEvaluator(qrels, set(PYTREC.values())).evaluate(run)
    return {name: np.array([measured[f"q{q}"][m] for q in range(scores.shape[0])]) for name, m in PYTREC.items()}


def random_case(rng, queries: int, docs: int, local: bool):
    scores = rng.standard_normal((queries, docs))
    relevance = rng.choice([0, 0, 0, 0, 0, 1, 2, 3], size=(queries, docs))
    relevance[np.arange(queries), rng.integers(0, docs, queries)] = rng.integers(1, 4, queries)  # >= 1 relevant
    valid = None
    if local:
        valid = np.zeros((queries, docs), dtype=bool)
        for q in range(queries):
            valid[q, : rng.integers(1, docs + 1)] = True
            valid[q] |= relevance[q] > 0  # candidates include the relevant documents
            relevance[q, ~valid[q]] = 0
    return scores, relevance, valid


@pytest.mark.parametrize("local", [False, True], ids=["global", "local"])
@pytest.mark.parametrize("seed", range(3))
def test_metrics_match_pytrec_eval(seed, local):
    rng = np.random.default_rng(seed)
    scores, relevance, valid = random_case(rng, queries=40, docs=25 if local else 30, local=local)
    ours = ev.rank_metrics(scores, relevance, valid)
    theirs = pytrec_metrics(scores, relevance, valid)
    assert list(ours) == list(ev.METRICS)
    for name in ev.METRICS:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-9, err_msg=name)


def test_metrics_with_fewer_candidates_than_the_cutoff():
    scores = np.array([[0.3, 0.9, 0.1]])
    relevance = np.array([[2, 0, 1]])
    ours = ev.rank_metrics(scores, relevance)
    theirs = pytrec_metrics(scores, relevance)
    for name in ev.METRICS:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-12, err_msg=name)
    assert ours["R@1"][0] == 0 and ours["R@5"][0] == 1 and ours["MRR"][0] == 0.5


def test_ties_are_broken_against_the_relevant_documents():
    scores = np.zeros((2, 4))
    relevance = np.array([[1, 0, 0, 0], [0, 2, 0, 1]])
    out = ev.rank_metrics(scores, relevance)
    assert out["R@1"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out["MRR"], [1 / 4, 1 / 3])  # the grade-1 document ranks before the grade-2 one
    # equal relevance: file order decides, and ranking twice gives the same answer
    out = ev.rank_metrics(np.array([[0.5, 0.5, 0.5]]), np.array([[1, 1, 0]]))
    assert out["MRR"].tolist() == [0.5]


def test_score_dataset_matches_pytrec_eval_on_global_and_local_ranking():
    rng = np.random.default_rng(7)
    corpus = [ev.Item(f"d{i}", {"text": f"doc {i}"}, None, f"corpus.jsonl:{i + 1}") for i in range(12)]
    queries = [ev.Item(f"q{i}", {"text": f"query {i}"}, None, f"queries.jsonl:{i + 1}") for i in range(9)]
    qrels = {}
    candidates = {}
    for q in queries:
        ids = list(rng.choice(12, size=rng.integers(2, 12), replace=False))
        candidates[q.id] = [f"d{i}" for i in ids]
        relevant = ids[: rng.integers(1, 3)]
        qrels[q.id] = {f"d{i}": int(rng.integers(1, 4)) for i in relevant}
    doc_vectors = rng.standard_normal((12, 8)).astype(np.float32)
    query_vectors = rng.standard_normal((9, 8)).astype(np.float32)
    docs = {f"d{i}": doc_vectors[i] for i in range(12)}
    for ranking in ("global", "local"):
        dataset = ev.Dataset(
            folder=Path("."),
            name=ranking,
            abilities=["X"],
            ranking=ranking,
            metric="nDCG@5",
            query_instruction=None,
            document_instruction=None,
            queries=queries,
            corpus=corpus,
            qrels=qrels,
            candidates=candidates if ranking == "local" else None,
        )
        result = ev.score_dataset(dataset, query_vectors, docs, chunk_cells=40)  # several chunks
        full = (query_vectors @ doc_vectors.T).astype(np.float64)
        valid = np.ones_like(full, dtype=bool)
        if ranking == "local":
            valid[:] = False
            for q, ids in enumerate(candidates.values()):
                valid[q, [int(d[1:]) for d in ids]] = True
        relevance = np.zeros(full.shape, dtype=int)
        for q, judged in enumerate(qrels.values()):
            for d, grade in judged.items():
                relevance[q, int(d[1:])] = grade
        # our scores are float32 dot products: give pytrec_eval the same values
        theirs = pytrec_metrics(full.astype(np.float32).astype(np.float64), relevance, valid)
        for name in ev.METRICS:
            assert result.scores[name] == pytest.approx(theirs[name].mean(), abs=1e-6), (ranking, name)
        expected_chance = np.mean(
            [
                ev.chance_metrics(list(qrels[q.id].values()), int(valid[i].sum()))["nDCG@5"]
                for i, q in enumerate(queries)
            ]
        )
        assert result.chance["nDCG@5"] == pytest.approx(expected_chance)
        assert result.documents == (12 if ranking == "global" else round(valid.sum() / 9))


# --- chance levels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grades", [[1], [2, 1, 1], [3, 1], [1, 1, 1, 1, 1, 1, 1]])
def test_chance_is_the_mean_over_every_ranking(grades):
    """Brute force: every order of 7 candidates, each scored by rank_metrics, averaged."""
    n = 7
    relevance = np.array(grades + [0] * (n - len(grades)))
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.float64)  # scores = -position
    out = ev.rank_metrics(-orders, np.broadcast_to(relevance, orders.shape))
    chance = ev.chance_metrics(grades, n)
    for name in ev.METRICS:
        assert chance[name] == pytest.approx(out[name].mean(), abs=1e-12), name


def test_chance_closed_forms_on_a_large_case():
    n, r = 500, 3
    chance = ev.chance_metrics([1] * r, n)
    for name, k in (("R@1", 1), ("R@5", 5), ("R@10", 10)):
        assert chance[name] == pytest.approx(1 - math.comb(n - r, k) / math.comb(n, k))
    expected_mrr = sum(math.comb(n - i, r - 1) / math.comb(n, r) / i for i in range(1, n - r + 2))
    assert chance["MRR"] == pytest.approx(expected_mrr)
    # Monte Carlo on the same case agrees with the exact values
    rng = np.random.default_rng(0)
    relevance = np.zeros(n, dtype=int)
    relevance[:r] = 1
    out = ev.rank_metrics(rng.random((4000, n)), np.broadcast_to(relevance, (4000, n)))
    for name in ev.METRICS:
        assert out[name].mean() == pytest.approx(chance[name], abs=0.01), name


# --- the dataset format ----------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_dataset(folder: Path, spec: dict, queries, corpus, qrels, candidates=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(spec))
    write_jsonl(folder / "queries.jsonl", queries)
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(folder / "qrels.jsonl", qrels)
    if candidates is not None:
        write_jsonl(folder / "candidates.jsonl", candidates)
    return folder


def text_dataset(folder: Path, ranking: str = "local") -> Path:
    """A small valid dataset: 2 text queries, 3 documents (one an image), local or global ranking."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "blue.png", colour="blue")
    return write_dataset(
        folder,
        {"name": "toy", "abilities": ["TXT"], "ranking": ranking, "metric": "MRR", "query_instruction": None},
        [{"id": "q1", "text": "a blue square"}, {"id": "q2", "text": "a red square"}],
        [{"id": "d1", "image": "blue.png"}, {"id": "d2", "text": "red"}, {"id": "d3", "text": "green"}],
        [{"query_id": "q1", "doc_id": "d1", "relevance": 2}, {"query_id": "q2", "doc_id": "d2", "relevance": 1}],
        [{"query_id": "q1", "doc_ids": ["d1", "d2"]}, {"query_id": "q2", "doc_ids": ["d2", "d3"]}]
        if ranking == "local"
        else None,
    )


def test_a_valid_dataset_loads(tmp_path):
    dataset = ev.load_dataset(text_dataset(tmp_path / "toy"))
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
        r"corpus\.jsonl:3: 'id' must be a non-empty string, got int 3",
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
        r"qrels\.jsonl:2: 'relevance' must be an integer >= 0, got int -1",
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
    with pytest.raises(ev.EvaluationError, match=message):
        ev.load_dataset(folder)


def test_benchmark_errors(tmp_path):
    with pytest.raises(ev.EvaluationError, match="no dataset folders"):
        ev.load_benchmark(tmp_path)
    text_dataset(tmp_path / "a")
    text_dataset(tmp_path / "b", ranking="global")
    with pytest.raises(ev.EvaluationError, match=r"dataset name 'toy' is also used by"):
        ev.load_benchmark(tmp_path)
    with pytest.raises(ev.EvaluationError, match=r"--datasets: unknown dataset\(s\) \['nope'\]"):
        ev.load_benchmark(tmp_path, ["nope"])
    info, datasets = ev.load_benchmark(tmp_path, ["b"])  # by folder name
    assert [d.ranking for d in datasets] == ["global"] and info["name"] == tmp_path.name


def test_a_missing_bundled_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "BUNDLED_MODEL", ROOT / "bundled" / "not-here")
    with pytest.raises(ev.EvaluationError, match=r"bundled tiny model bundled/not-here is missing.*--model"):
        ev.resolve_model(None)
    with pytest.raises(ev.EvaluationError, match="no such checkpoint folder"):
        ev.resolve_model(str(tmp_path / "nothing"))
    assert ev.resolve_model("Alibaba-NLP/GVE-3B") == "Alibaba-NLP/GVE-3B"


# --- end to end -------------------------------------------------------------------------------------------------

DIRECTIONS = ("right", "left", "up", "down")


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> Path:
    """Two datasets over 4 short clips: global text->video (TXT, CG), local text+image->video (CMP)."""
    root = tmp_path_factory.mktemp("bench")
    (root / "benchmark.json").write_text(json.dumps({"name": "MiniBench", "full_name": "Mini test benchmark"}))
    clips = root / "clips"
    clips.mkdir()
    colours = ("red", "green", "blue", "yellow")
    for colour, direction in zip(colours, DIRECTIONS, strict=True):
        write_video(clips / f"{colour}.mp4", moving_square(8, colour=colour, direction=direction), fps=8)
    write_image(clips / "square.png", colour="white")
    corpus = [{"id": c, "video": f"../clips/{c}.mp4"} for c in colours]
    write_dataset(
        root / "txt",
        {"name": "TXT-mini", "abilities": ["TXT", "CG"], "ranking": "global", "metric": "R@1"},
        [
            {"id": f"q{i}", "text": f"a {c} square moving {d}"}
            for i, (c, d) in enumerate(zip(colours, DIRECTIONS, strict=True))
        ],
        corpus,
        [{"query_id": f"q{i}", "doc_id": c, "relevance": 1} for i, c in enumerate(colours)],
    )
    write_dataset(
        root / "cmp",
        {
            "name": "CMP-mini",
            "abilities": ["CMP"],
            "ranking": "local",
            "metric": "nDCG@5",
            "query_instruction": "Find the video of this object doing the described motion.",
        },
        [{"id": "c0", "text": "this, moving right", "image": str(clips / "square.png")}, {"id": "c1", "text": "up"}],
        corpus,
        [
            {"query_id": "c0", "doc_id": "red", "relevance": 2},
            {"query_id": "c0", "doc_id": "green", "relevance": 1},
            {"query_id": "c1", "doc_id": "blue", "relevance": 1},
        ],
        [{"query_id": "c0", "doc_ids": ["red", "green", "blue"]}, {"query_id": "c1", "doc_ids": ["blue", "yellow"]}],
    )
    return root


class Calls(list):
    """The number of inputs of each encode/encode_stream call, and how many times the weights were loaded."""

    loads = 0


@pytest.fixture()
def counted(monkeypatch) -> Calls:
    """Counts the model loads and the inputs that reach the model's encode/encode_stream in evaluate()."""
    calls = Calls()
    original = ev.load_model

    def load_model(*args, **kwargs):
        calls.loads += 1
        model = original(*args, **kwargs)
        for name in ("encode", "encode_stream"):
            method = getattr(model, name)

            def counting(inputs, *a, _method=method, **k):
                inputs = list(inputs)
                calls.append(len(inputs))
                return _method(inputs, *a, **k)

            setattr(model, name, counting)
        return model

    monkeypatch.setattr(ev, "load_model", load_model)
    return calls


def test_end_to_end_results_tables_cache_and_model_card(benchmark, tiny_path, tmp_path, capsys, counted):
    output = tmp_path / "out" / "results.json"
    args = [str(benchmark), "--model", str(tiny_path), "--cache-dir", str(tmp_path / "cache")]
    args += ["--output", str(output), "--model-name", "gve-tiny-eval", "--batch-size", "4"]
    assert ev.main(args) == 0
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
    details = json.loads(ev.details_file(output).read_text())
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
    assert ev.main(args) == 0
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


def test_the_cache_key_follows_the_input_and_the_settings(benchmark, tiny_path, tmp_path, capsys, counted):
    benchmark = shutil.copytree(benchmark, tmp_path / "bench")  # this test changes a clip
    cache = tmp_path / "cache"
    args = [str(benchmark), "--model", str(tiny_path), "--cache-dir", str(cache), "--output", str(tmp_path / "r.json")]
    assert ev.main([*args, "--datasets", "TXT-mini"]) == 0
    assert sum(counted) == 8
    counted.clear()
    # a changed clip is embedded again, and only it; CMP-mini's queries are new
    clip = benchmark / "clips" / "red.mp4"
    write_video(clip, moving_square(8, colour="red", direction="left"), fps=8)
    assert ev.main(args) == 0
    assert sum(counted) == 1 + 2
    counted.clear()
    assert ev.main([*args, "--no-cache"]) == 0
    assert sum(counted) == 10
    capsys.readouterr()


def test_scripts_help_explains_the_format():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for needle in ("queries.jsonl", "candidates.jsonl", "qrels.jsonl", "--cache-dir", "Ties are broken"):
        assert needle in result.stdout


def test_scores_are_those_of_model_encode_with_the_datasets_instructions(benchmark, tiny_path, model, tmp_path):
    from gve_tools.repo import query_instruction

    QUERY_INSTRUCTION = query_instruction()

    details = ev.evaluate(benchmark, str(tiny_path), datasets=["TXT-mini"], cache_dir=None, output=None)
    dataset = ev.load_dataset(benchmark / "txt")
    queries = model.encode([q.fields["text"] for q in dataset.queries], instruction=QUERY_INSTRUCTION)
    documents = model.encode([d.fields["video"] for d in dataset.corpus])  # the checkpoint's default instruction
    relevance = np.eye(4, dtype=int)  # query i is about clip i
    expected = ev.rank_metrics((queries @ documents.T).numpy(), relevance)
    for name in ev.METRICS:
        assert details["datasets"]["TXT-mini"]["scores"][name] == pytest.approx(expected[name].mean(), abs=1e-6)


def test_inputs_that_cannot_be_embedded_are_reported_with_their_line(benchmark, tiny_path, tmp_path, capsys):
    benchmark = shutil.copytree(benchmark, tmp_path / "bench")
    clip = benchmark / "clips" / "green.mp4"
    clip.write_bytes(clip.read_bytes()[:200])
    with pytest.raises(
        ev.EvaluationError,
        match=r"1 input\(s\) could not be embedded:\nCMP-mini: \S*cmp/corpus\.jsonl:2 \(id 'green'\) "
        r"\(also TXT-mini: \S*txt/corpus\.jsonl:2 \(id 'green'\)\): could not read video",
    ):
        ev.evaluate(benchmark, str(tiny_path), cache_dir=tmp_path / "cache", output=None)
    assert "embeddings: 0 cached, 10 to compute" in capsys.readouterr().out
    with pytest.raises(ev.EvaluationError):  # the 9 good inputs were cached
        ev.evaluate(benchmark, str(tiny_path), cache_dir=tmp_path / "cache", output=None)
    assert "embeddings: 9 cached, 1 to compute" in capsys.readouterr().out


def test_checkpoint_identity(tiny_path, hub_cache, tmp_path, monkeypatch):
    import huggingface_hub

    folder = shutil.copytree(tiny_path, tmp_path / "ckpt")
    first = ev.checkpoint_identity(str(folder))
    assert first["weights"].startswith("stat:") and first["folder"] == str(folder.resolve())
    (folder / "README.md").write_text("a new card\n")
    assert ev.checkpoint_identity(str(folder)) == first  # the card does not change an embedding
    os.utime(folder / "model.safetensors", ns=(1, 1))
    assert ev.checkpoint_identity(str(folder))["weights"] != first["weights"]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    assert ev.checkpoint_identity("Alibaba-NLP/GVE-tiny")["weights"] == "commit:" + "1" * 40
    assert ev.checkpoint_identity("Alibaba-NLP/GVE-tiny", "v2")["weights"] == "commit:" + "2" * 40
    with pytest.raises(ev.EvaluationError, match="cannot find 'Alibaba-NLP/GVE-nothing'"):
        ev.checkpoint_identity("Alibaba-NLP/GVE-nothing")
