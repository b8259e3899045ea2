"""gve_tools.corpus.index and the search command: results equal brute force over `model.encode`."""

import json

import numpy as np
import pytest
import torch

from gve_tools.corpus.index import build_index, load_index, search
from gve_tools.corpus.search_cli import main
from gve_tools.repo import query_instruction
from tests.corpus.support import encode_rows, resolved

faiss = pytest.importorskip("faiss")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_matches_brute_force(embedded, corpus_rows, model, media, kind):
    _, out, _ = embedded
    folder, rows = corpus_rows
    rows = resolved(rows, folder)
    index_path = build_index(out, kind=kind, nlist=2 if kind == "ivf" else None, nprobe=2)
    assert index_path == out / "index.faiss"
    description = json.loads((out / "index.json").read_text())
    assert description["kind"] == kind and description["ids"] == [str(row["id"]) for row in rows]
    assert "spans" not in description  # no row has a time range: every vector is a whole item

    queries = [
        "a red square moving to the right",
        {"image": str(media["image_2"])},
        {"video": str(media["video_2"])},
        {"text": "like this, but green", "image": str(media["image"])},
        {"text": "like this, but faster", "video": str(media["video"])},
    ]
    k = 4
    results = search(out, queries, model, k=k)
    documents = encode_rows(model, rows)
    query_vectors = model.encode(queries, instruction=query_instruction(), show_progress_bar=False)
    scores = query_vectors @ documents.T
    for result, row_scores in zip(results, scores, strict=True):
        top = torch.topk(row_scores, k)
        assert [hit.id for hit in result] == [str(rows[i]["id"]) for i in top.indices.tolist()]
        np.testing.assert_allclose([hit.score for hit in result], top.values.numpy(), atol=1e-4)
        assert all(hit.start is None and hit.end is None for hit in result)
    index, ids, _ = load_index(out)
    assert index.ntotal == len(ids) == len(rows)


def test_search_command_errors_name_the_missing_index_and_model(tmp_path, capsys):
    assert main([str(tmp_path), "--text", "a red square"]) == 1
    assert f"error: {tmp_path} has no index.faiss; run embed_corpus.py with --index first" in capsys.readouterr().err

    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype=np.float32))
    faiss.write_index(index, str(tmp_path / "index.faiss"))
    settings = {"checkpoint": str(tmp_path / "gone"), "revision": None}
    (tmp_path / "index.json").write_text(json.dumps({"kind": "flat", "ids": list("abcd"), "settings": settings}))
    assert main([str(tmp_path), "--text", "a red square"]) == 1
    assert "error: cannot load the model" in capsys.readouterr().err
