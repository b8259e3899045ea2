"""int8 and binary corpus indexes: the same top-k as brute force over the same quantized vectors, re-scoring by the
float vectors kept beside them, their files, and the commands' options."""

import json
import shutil

import numpy as np
import pytest

from gve_tools.corpus import cli
from gve_tools.corpus.index import DEFAULT_RESCORE, build_index, load_index, search
from gve_tools.corpus.search_cli import main
from gve_tools.corpus.shards import read_embeddings
from gve_tools.repo import query_instruction
from gve_tools.vectors import VectorFormat, scoring_vectors
from tests.test_vectors import assert_same_top_k

faiss = pytest.importorskip("faiss")

QUERIES = ["a red square moving to the right", "a green square", "an empty dark room"]
K = 4


@pytest.fixture
def folder(embedded, tmp_path):
    """A copy of the embedded corpus (the shared one keeps its own index) and its unit vectors, in index order."""
    copy = shutil.copytree(embedded[1], tmp_path / "out")
    ids, vectors = read_embeddings(copy)
    return copy, ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def query_vectors(model):
    return model.encode(QUERIES, instruction=query_instruction(), show_progress_bar=False).numpy()


@pytest.mark.ray
@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_a_compact_index_returns_the_brute_force_top_k(folder, model, query_vectors, kind):
    out, ids, vectors = folder
    build_index(out, vectors=kind)
    description = json.loads((out / "index.json").read_text())
    assert description["vectors"] == {"kind": kind, "rescore": DEFAULT_RESCORE, "dims": None}
    assert description["ids"] == ids and description["float_vectors"] == "vectors.npy"
    stored = np.load(out / "vectors.npy")
    assert stored.dtype == np.float16 and np.allclose(stored, vectors, atol=1e-3)  # the float copy, index order
    index, _, _ = load_index(out)
    assert isinstance(index, faiss.IndexBinaryFlat if kind == "binary" else faiss.IndexScalarQuantizer)

    results = search(out, QUERIES, model, k=K, rescore=0)
    scores = np.array([[hit.score for hit in result] for result in results])
    positions = np.array([[ids.index(hit.id) for hit in result] for result in results])
    compact_queries, compact_corpus = scoring_vectors(query_vectors, vectors, VectorFormat(kind))
    assert_same_top_k(scores, positions, compact_queries @ compact_corpus.T, k=K, atol=1e-4)


@pytest.mark.ray
@pytest.mark.parametrize("kind", ["int8", "binary"])
def test_rescoring_restores_the_float_ranking(folder, model, query_vectors, kind):
    out, ids, vectors = folder
    build_index(out, vectors=kind)  # re-scores its top 100: the whole corpus
    exact = query_vectors @ vectors.T
    for result, row in zip(search(out, QUERIES, model, k=K), exact, strict=True):
        assert [hit.id for hit in result] == [ids[i] for i in np.argsort(-row)[:K]]
        np.testing.assert_allclose([hit.score for hit in result], np.sort(row)[::-1][:K], atol=2e-3)  # float16


@pytest.mark.ray
def test_compact_files_are_durable_and_a_float32_rebuild_drops_the_float_copy(folder, sync_log):
    out, _, _ = folder
    build_index(out, vectors=VectorFormat("int8"))  # a whole format: its rescore (0) is kept
    assert [call[2] for call in sync_log if call[0] == "replace"] == [
        out / "vectors.npy",
        out / "index.faiss",
        out / "index.json",
    ]
    assert json.loads((out / "index.json").read_text())["vectors"]["rescore"] == 0
    build_index(out)
    assert json.loads((out / "index.json").read_text())["vectors"] == {"kind": "float32", "rescore": 0, "dims": None}
    assert not (out / "vectors.npy").exists()


@pytest.mark.ray
def test_a_missing_float_copy_is_named(folder, model):
    out, _, _ = folder
    build_index(out, vectors="binary", rescore=5)
    (out / "vectors.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"vectors\.npy is missing: it re-scores the index's top 5"):
        search(out, QUERIES, model, k=K)
    assert len(search(out, QUERIES, model, k=K, rescore=0)[0]) == K


@pytest.mark.ray
@pytest.mark.slow
def test_search_command_on_a_binary_index(folder, capsys):
    out, ids, _ = folder
    build_index(out, vectors="binary")
    assert main([str(out), "--text", QUERIES[0], "--k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "vectors: binary+rescore100 (scores: cosines)" and len(lines) == 4
    assert main([str(out), "--text", QUERIES[0], "--k", "3", "--rescore", "0", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and {hit["id"] for hit in hits} <= set(ids)
    assert all(hit["vectors"] == "binary" and (hit["score"] * 64).is_integer() for hit in hits)  # 1 - 2·hamming/64

    build_index(out)
    with pytest.raises(SystemExit) as exited:
        main([str(out), "--text", QUERIES[0], "--rescore", "10"])
    assert exited.value.code == 2
    assert "--rescore: rescore re-ranks a compact search by the float vectors" in capsys.readouterr().err


def test_bad_vector_options_are_refused_before_embedding(tmp_path, capsys):
    argv = ["manifest.jsonl", "--checkpoint", "gve", "--out", str(tmp_path / "out"), "--index"]
    with pytest.raises(SystemExit):
        cli.main([*argv, "--vectors", "int4"])
    assert "argument --vectors: invalid choice: 'int4'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*argv, "--rescore", "10"])  # float32
    assert "--vectors/--rescore: rescore re-ranks a compact search" in capsys.readouterr().err
    with pytest.raises(ValueError, match="vectors must be one of float32, int8, binary, got 'int4'"):
        build_index(tmp_path, vectors="int4")
    assert not (tmp_path / "out").exists()
