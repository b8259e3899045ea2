"""gve_tools.evaluation.metrics: rank metrics against pytrec_eval, dataset scoring, chance levels."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from gve_tools.evaluation.format import METRICS, Dataset, Item
from gve_tools.evaluation.metrics import chance_metrics, rank_metrics, score_dataset

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
    ours = rank_metrics(scores, relevance, valid)
    theirs = pytrec_metrics(scores, relevance, valid)
    assert list(ours) == list(METRICS)
    for name in METRICS:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-9, err_msg=name)


def test_metrics_with_fewer_candidates_than_the_cutoff():
    scores = np.array([[0.3, 0.9, 0.1]])
    relevance = np.array([[2, 0, 1]])
    ours = rank_metrics(scores, relevance)
    theirs = pytrec_metrics(scores, relevance)
    for name in METRICS:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-12, err_msg=name)
    assert ours["R@1"][0] == 0 and ours["R@5"][0] == 1 and ours["MRR"][0] == 0.5


def test_ties_are_broken_against_the_relevant_documents():
    scores = np.zeros((2, 4))
    relevance = np.array([[1, 0, 0, 0], [0, 2, 0, 1]])
    out = rank_metrics(scores, relevance)
    assert out["R@1"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out["MRR"], [1 / 4, 1 / 3])  # the grade-1 document ranks before the grade-2 one
    # equal relevance: file order decides, and ranking twice gives the same answer
    out = rank_metrics(np.array([[0.5, 0.5, 0.5]]), np.array([[1, 1, 0]]))
    assert out["MRR"].tolist() == [0.5]


def test_score_dataset_matches_pytrec_eval_on_global_and_local_ranking():
    rng = np.random.default_rng(7)
    corpus = [Item(f"d{i}", {"text": f"doc {i}"}, None, f"corpus.jsonl:{i + 1}") for i in range(12)]
    queries = [Item(f"q{i}", {"text": f"query {i}"}, None, f"queries.jsonl:{i + 1}") for i in range(9)]
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
        dataset = Dataset(
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
        result = score_dataset(dataset, query_vectors, docs, chunk_cells=40)  # several chunks
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
        for name in METRICS:
            assert result.scores[name] == pytest.approx(theirs[name].mean(), abs=1e-6), (ranking, name)
        expected_chance = np.mean(
            [chance_metrics(list(qrels[q.id].values()), int(valid[i].sum()))["nDCG@5"] for i, q in enumerate(queries)]
        )
        assert result.chance["nDCG@5"] == pytest.approx(expected_chance)
        assert result.documents == (12 if ranking == "global" else round(valid.sum() / 9))


@pytest.mark.parametrize("grades", [[1], [2, 1, 1], [3, 1], [1, 1, 1, 1, 1, 1, 1]])
def test_chance_is_the_mean_over_every_ranking(grades):
    """Brute force: every order of 7 candidates, each scored by rank_metrics, averaged."""
    n = 7
    relevance = np.array(grades + [0] * (n - len(grades)))
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.float64)  # scores = -position
    out = rank_metrics(-orders, np.broadcast_to(relevance, orders.shape))
    chance = chance_metrics(grades, n)
    for name in METRICS:
        assert chance[name] == pytest.approx(out[name].mean(), abs=1e-12), name


def test_chance_closed_forms_on_a_large_case():
    n, r = 500, 3
    chance = chance_metrics([1] * r, n)
    for name, k in (("R@1", 1), ("R@5", 5), ("R@10", 10)):
        assert chance[name] == pytest.approx(1 - math.comb(n - r, k) / math.comb(n, k))
    expected_mrr = sum(math.comb(n - i, r - 1) / math.comb(n, r) / i for i in range(1, n - r + 2))
    assert chance["MRR"] == pytest.approx(expected_mrr)
    # Monte Carlo on the same case agrees with the exact values
    rng = np.random.default_rng(0)
    relevance = np.zeros(n, dtype=int)
    relevance[:r] = 1
    out = rank_metrics(rng.random((4000, n)), np.broadcast_to(relevance, (4000, n)))
    for name in METRICS:
        assert out[name].mean() == pytest.approx(chance[name], abs=0.01), name


def _unit(rng, rows: int, dims: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _global_dataset(queries: int, docs: int) -> Dataset:
    corpus = [Item(f"d{i}", {"text": f"doc {i}"}, None, f"corpus.jsonl:{i + 1}") for i in range(docs)]
    items = [Item(f"q{i}", {"text": f"query {i}"}, None, f"queries.jsonl:{i + 1}") for i in range(queries)]
    qrels = {f"q{i}": {f"d{(3 * i) % docs}": 1} for i in range(queries)}
    return Dataset(Path("."), "compact", ["X"], "global", "R@1", None, None, items, corpus, qrels, None)


def _expected(scores: np.ndarray, dataset: Dataset) -> dict[str, float]:
    relevance = np.zeros(scores.shape, dtype=int)
    for q, item in enumerate(dataset.queries):
        for doc, grade in dataset.qrels[item.id].items():
            relevance[q, int(doc[1:])] = grade
    return {name: float(values.mean()) for name, values in rank_metrics(scores, relevance).items()}


def test_compact_vectors_are_scored_as_their_index_scores_them():
    """int8: float queries against FAISS's decoded int8 codes; binary: 1 - 2*hamming/D of the sign bits (counted
    here with numpy); re-scoring the whole corpus gives the float ranking; truncation re-normalises the prefix."""
    import faiss

    from gve_tools.vectors import VectorFormat

    rng = np.random.default_rng(3)
    dataset = _global_dataset(40, 30)
    queries, docs = _unit(rng, 40, 64), _unit(rng, 30, 64)
    queries = queries + 0.6 * docs[[(3 * i) % 30 for i in range(40)]]  # each query leans to its relevant document
    by_id = {f"d{i}": docs[i] for i in range(30)}

    quantizer = faiss.ScalarQuantizer(64, faiss.ScalarQuantizer.QT_8bit)
    quantizer.train(docs)
    decoded = quantizer.decode(quantizer.compute_codes(docs))
    bits_q, bits_d = (
        np.unpackbits(np.packbits(queries > 0, axis=1), axis=1),
        np.unpackbits(np.packbits(docs > 0, axis=1), axis=1),
    )
    hamming = (bits_q[:, None, :] != bits_d[None, :, :]).sum(-1)
    prefix_q, prefix_d = queries[:, :16], docs[:, :16]
    prefix_q = prefix_q / np.linalg.norm(prefix_q, axis=1, keepdims=True)
    prefix_d = prefix_d / np.linalg.norm(prefix_d, axis=1, keepdims=True)
    cases = {
        VectorFormat("int8"): queries @ decoded.T,
        VectorFormat("binary"): 1 - 2 * hamming / 64,
        VectorFormat("binary", rescore=30): queries @ docs.T,
        VectorFormat(dims=16): prefix_q @ prefix_d.T,
    }
    for fmt, scores in cases.items():
        result = score_dataset(dataset, queries, by_id, chunk_cells=200, vectors=fmt)
        for name, value in _expected(scores, dataset).items():
            assert result.scores[name] == pytest.approx(value, abs=1e-6), (fmt.label, name)
    binary = score_dataset(dataset, queries, by_id, vectors=VectorFormat("binary"))
    assert binary.scores != score_dataset(dataset, queries, by_id).scores  # the bits lose something here


def test_rescoring_reorders_only_the_compact_top():
    from gve_tools.vectors import rescore

    compact = np.array([[0.9, 0.8, 0.7, 0.1, 0.0]])
    exact = np.array([[0.1, 0.5, 0.9, 0.95, 0.2]])
    # the top 3 by compact score (columns 0-2) come first, in float order; the rest keep their compact order
    order = np.argsort(-rescore(compact, exact, 3), axis=1, kind="stable")[0]
    assert order.tolist() == [2, 1, 0, 3, 4]
    order = np.argsort(-rescore(compact, exact, 5), axis=1, kind="stable")[0]
    assert order.tolist() == np.argsort(-exact, axis=1)[0].tolist()
