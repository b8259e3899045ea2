"""gve_tools.vectors: the formats, and that a FAISS index of each returns what brute force over `scoring_vectors`
does, so that the evaluation measures what an index search returns."""

import json

import numpy as np
import pytest

from gve_tools.vectors import (
    VECTOR_KINDS,
    VectorFormat,
    binarize,
    make_index,
    rescore,
    scoring_vectors,
    search,
    truncate,
)

faiss = pytest.importorskip("faiss")

K = 10


def unit(vectors):
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """Clustered unit vectors (500 x 64) and 20 queries that are noisy copies of some of them."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 64))
    corpus = unit(centers[rng.integers(10, size=500)] + 0.7 * rng.standard_normal((500, 64)))
    queries = unit(corpus[:20] + 0.3 * rng.standard_normal((20, 64)))
    return queries, corpus


def assert_same_top_k(scores, positions, reference, k=K, atol=1e-5):
    """The top k of an index equals brute force's `reference` scores [Q, N]: the same scores in order, and each
    position brute force's score of it (so the same documents, but for the order of tied ones)."""
    assert scores.shape == positions.shape == (len(reference), k)
    for row_scores, row_positions, row_reference in zip(scores, positions, reference, strict=True):
        np.testing.assert_allclose(row_scores, np.sort(row_reference)[::-1][:k], atol=atol)
        np.testing.assert_allclose(row_reference[row_positions], row_scores, atol=atol)
        assert len(set(row_positions.tolist())) == k


def test_formats_are_checked_and_labelled():
    for bad in (dict(kind="int4"), dict(kind="int8", rescore=-1), dict(rescore=10), dict(dims=0)):
        with pytest.raises(ValueError):
            VectorFormat(**bad)
    labels = {
        VectorFormat(): "float32",
        VectorFormat("binary", rescore=100): "binary+rescore100",
        VectorFormat(dims=64): "float32@64",
        VectorFormat("int8", 10, 32): "int8+rescore10@32",
    }
    for fmt, label in labels.items():
        assert fmt.label == label and VectorFormat(**fmt.as_json()) == fmt
    assert [VectorFormat(kind).bytes_per_vector(2048) for kind in VECTOR_KINDS] == [8192, 2048, 256]
    assert VectorFormat("int8", dims=512).bytes_per_vector(2048) == 512


def test_truncate_keeps_the_first_values_renormalised(data):
    _, corpus = data
    short = truncate(corpus, 16)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(short * np.linalg.norm(corpus[:, :16], axis=1, keepdims=True), corpus[:, :16], 1e-5)
    assert truncate(corpus, None) is corpus  # already float32 and contiguous: untouched
    with pytest.raises(ValueError, match="cannot keep 65 dimensions of 64-dimensional vectors"):
        truncate(corpus, 65)


def test_binarize_packs_sign_bits_first_value_highest():
    vectors = np.array([[1.0, -1, -1, -1, -1, -1, -1, 0.5, 0, -2, 3, 0, 0, 0, 0, 0]])
    assert binarize(vectors).tolist() == [[0b10000001, 0b00100000]]  # a zero counts as negative


def test_binary_scoring_vectors_score_one_minus_twice_the_hamming_fraction(data):
    queries, corpus = data
    query_vectors, corpus_vectors = scoring_vectors(queries, corpus, VectorFormat("binary"))
    hamming = ((queries[:, None, :] > 0) != (corpus[None, :, :] > 0)).sum(-1)
    np.testing.assert_allclose(query_vectors @ corpus_vectors.T, 1 - 2 * hamming / 64, atol=1e-6)


@pytest.mark.parametrize("dims", [None, 32])
@pytest.mark.parametrize("kind", VECTOR_KINDS)
def test_a_flat_index_returns_the_brute_force_top_k(data, kind, dims):
    queries, corpus = data
    fmt = VectorFormat(kind, dims=dims)
    query_vectors, corpus_vectors = scoring_vectors(queries, corpus, fmt)
    scores, positions = search(make_index(corpus, fmt), queries, K, fmt)
    assert_same_top_k(scores, positions, query_vectors @ corpus_vectors.T)
    if kind != "binary":  # no ties: the very same order
        assert positions.tolist() == np.argsort(-(query_vectors @ corpus_vectors.T), axis=1)[:, :K].tolist()


@pytest.mark.parametrize("kind", VECTOR_KINDS)
def test_an_ivf_index_searching_every_list_equals_the_flat_one(data, kind):
    queries, corpus = data
    fmt = VectorFormat(kind)
    query_vectors, corpus_vectors = scoring_vectors(queries, corpus, fmt)
    index = make_index(corpus, fmt, kind="ivf", nlist=4, nprobe=4)
    assert index.nlist == index.nprobe == 4
    scores, positions = search(index, queries, K, fmt)
    assert_same_top_k(scores, positions, query_vectors @ corpus_vectors.T)
    flat_scores, _ = search(make_index(corpus, fmt), queries, K, fmt)
    np.testing.assert_allclose(scores, flat_scores, atol=1e-6)


@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_rescoring_every_candidate_restores_the_float_ranking(data, kind):
    queries, corpus = data
    fmt = VectorFormat(kind, rescore=len(corpus))
    scores, positions = search(make_index(corpus, fmt), queries, K, fmt, float_corpus=corpus)
    exact = queries @ corpus.T
    assert positions.tolist() == np.argsort(-exact, axis=1)[:, :K].tolist()
    np.testing.assert_allclose(scores, np.sort(exact, axis=1)[:, ::-1][:, :K], atol=1e-6)
    # the brute-force rescore does the same
    query_vectors, corpus_vectors = scoring_vectors(queries, corpus, fmt)
    ranked = rescore(query_vectors @ corpus_vectors.T, exact, len(corpus))
    assert np.argsort(-ranked, axis=1, kind="stable")[:, :K].tolist() == positions.tolist()


def test_a_shallow_rescoring_reorders_only_the_compact_top(data):
    queries, corpus = data
    depth = 20
    fmt = VectorFormat("int8", rescore=depth)  # int8 scores have no ties: FAISS's top 20 is brute force's
    query_vectors, corpus_vectors = scoring_vectors(queries, corpus, fmt)
    compact, exact = query_vectors @ corpus_vectors.T, queries @ corpus.T
    ranked = rescore(compact, exact, depth)
    order, compact_order = np.argsort(-ranked, axis=1), np.argsort(-compact, axis=1)
    for row in range(len(queries)):
        top = compact_order[row, :depth]
        assert sorted(order[row, :depth]) == sorted(top)  # the same candidates, in float order
        assert order[row, :depth].tolist() == top[np.argsort(-exact[row, top])].tolist()
        assert order[row, depth:].tolist() == compact_order[row, depth:].tolist()  # the rest untouched
    scores, positions = search(make_index(corpus, fmt), queries, K, fmt, float_corpus=corpus)
    assert positions.tolist() == order[:, :K].tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(exact, positions, axis=1), atol=1e-6)


def test_rescore_keeps_padding_last():
    scores = np.array([[0.9, 0.1, 0.5]])
    ranked = rescore(scores, np.array([[0.2, 0.8, 0.3]]), 2, valid=np.array([[True, False, True]]))
    assert np.argsort(-ranked[0]).tolist() == [2, 0, 1]  # the padding column stays out of the re-scored top


def test_a_short_corpus_pads_with_minus_one(data):
    queries, corpus = data
    fmt = VectorFormat("binary", rescore=100)
    scores, positions = search(make_index(corpus[:5], fmt), queries, 8, fmt, float_corpus=corpus[:5])
    assert (positions[:, 5:] == -1).all() and sorted(positions[0, :5]) == list(range(5))
    assert positions[:, :5].tolist() == np.argsort(-(queries @ corpus[:5].T), axis=1).tolist()


def test_bad_indexes_and_searches_are_refused(data):
    queries, corpus = data
    with pytest.raises(ValueError, match="not a multiple of 8"):
        make_index(corpus, VectorFormat("binary", dims=12))
    with pytest.raises(ValueError, match="'flat' or 'ivf'"):
        make_index(corpus, VectorFormat(), kind="hnsw")
    fmt = VectorFormat("int8", rescore=10)
    with pytest.raises(ValueError, match="needs the float vectors"):
        search(make_index(corpus, fmt), queries, K, fmt)


def test_the_vector_benchmark_reports_every_format(tmp_path, capsys):
    from gve_tools.benchmark.vectors import FORMATS, main

    output = tmp_path / "vector-index.json"
    argv = ["--n", "2000", "--dimensions", "64", "--queries", "8", "--k", "5", "--repeats", "1", "--output"]
    assert main([*argv, str(output)]) == 0
    result = json.loads(output.read_text())
    rows = {row["vectors"]: row for row in result["results"]}
    assert list(rows) == list(FORMATS) and result["command"].startswith("python scripts/benchmark_vectors.py --n 2000")
    recall = {label: row["recall_at_5"] for label, row in rows.items()}
    assert recall["float32"] == 1 and recall["binary+rescore100"] >= recall["binary"]
    assert [rows[label]["bytes_per_vector"] for label in ("float32", "int8", "binary")] == [256, 64, 8]
    assert rows["float32"]["per_1m"]["index_bytes"] == pytest.approx(256e6, rel=0.01)  # 4 bytes x 64, 1M times
    assert rows["binary+rescore100"]["per_1m"]["float_copy_bytes"] == 128e6  # float16
    printed = capsys.readouterr().out
    assert printed == result["report"] + "\n" and "| 64 dimensions (64) | binary+rescore100 | 8 |" in printed
