"""gve_tools.corpus.shards: what a run writes (one vector per row, in manifest order, its settings in each footer),
durable writes, and damaged shards named with the fix."""

import json
import re
import shutil

import numpy as np
import pytest

from gve_tools.corpus import build_index
from gve_tools.corpus.cli import main
from gve_tools.corpus.manifest import MANIFEST_FIELDS
from gve_tools.corpus.shards import DamagedShard, errors_path, read_embeddings, shard_path, write_shard
from tests.corpus.support import cosines, encode_rows, resolved, shard_files

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("faiss")


@pytest.mark.ray
@pytest.mark.slow
def test_shards_equal_model_encode(embedded, corpus_rows, model, tiny_path):
    manifest, out, summary = embedded
    folder, rows = corpus_rows
    assert (summary.embedded, summary.failed, summary.resumed) == (len(rows), 0, 0)
    assert [path.name for path in shard_files(out)] == [f"part-0000{i}.parquet" for i in range(3)]
    ids, vectors = read_embeddings(out)
    assert ids == [str(row["id"]) for row in rows]  # one to one, in manifest order
    assert vectors.dtype == np.float32 and vectors.shape == (len(rows), model.config.text_config.hidden_size)
    reference = encode_rows(model, resolved(rows, folder))
    assert cosines(vectors, reference).min() >= 0.9999
    assert (out / "errors.jsonl").read_text() == ""
    assert "embedded:          10 (3 shard(s) written)" in summary.report()


@pytest.mark.ray
def test_shard_metadata_records_checkpoint_and_settings(embedded, tiny_path, model):
    _, out, _ = embedded
    schema = pq.read_schema(shard_files(out)[1])
    assert schema.field("embedding").type.value_type == "float"
    metadata = json.loads(schema.metadata[b"gve"])
    assert metadata["shard"] == 1 and metadata["first_row"] == 4 and metadata["rows"] == 4
    settings = metadata["settings"]
    assert settings["checkpoint"] == str(tiny_path.resolve()) and settings["revision"] is None
    config = model.config
    assert settings["embedding_settings"]["max_length"] == config.max_length
    assert settings["embedding_settings"]["default_instruction"] == config.default_instruction
    assert settings["embedding_settings"]["video_max_frames"] == config.video_max_frames
    assert settings == json.loads((out / "settings.json").read_text())


def damage(path, how):
    """A finished shard cut short (an interrupted copy), replaced by bytes that are not Parquet, or scribbled
    over inside (a disk fault) with its footer intact."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage" * (len(data) // 8))
    else:
        path.write_bytes(data[:4] + b"\xff" * (len(data) // 2) + data[4 + len(data) // 2 :])


@pytest.mark.ray
@pytest.mark.parametrize("how", ["truncated", "garbage", "scribbled"])
def test_a_damaged_shard_is_named(embedded, tiny_path, tmp_path, capsys, how):
    manifest, out, _ = embedded
    copy = shutil.copytree(out, tmp_path / "out")
    shard = shard_files(copy)[1]
    damage(shard, how)
    message = rf"^shard {re.escape(str(shard))} is damaged \(.+\): delete it and run again to re-embed its rows$"
    with pytest.raises(DamagedShard, match=message):
        read_embeddings(copy)
    with pytest.raises(DamagedShard, match=message):
        build_index(copy)
    if how == "scribbled":
        return  # a resume reads only the shards' footers, and this one's is whole
    # a resume stops at it rather than count its rows as done, and says what to do
    argv = [str(manifest), "--checkpoint", str(tiny_path), "--out", str(copy), "--shard-size", "4", "--no-progress"]
    assert main(argv) == 1
    assert re.search(message[1:], capsys.readouterr().err, re.MULTILINE)


def assert_durable(calls, targets):
    """Each target was renamed into place just after its temporary file was synced, and its folder synced after."""
    assert [call[2] for call in calls if call[0] == "replace"] == targets
    for number, call in enumerate(calls):
        if call[0] == "replace":
            assert calls[number - 1] == ("fsync", call[1], False)
            assert calls[number + 1] == ("fsync", call[2].parent.stat().st_ino, True)


@pytest.mark.ray
def test_shards_and_index_are_synced_before_the_rename(embedded, tmp_path, sync_log):
    out = tmp_path / "out"
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True)
    settings = {"dimension": 3, "embedding_dtype": "float32", "shard_size": 2}
    rows = [{**dict.fromkeys(MANIFEST_FIELDS), "id": ident, "text": ident} for ident in ("good", "bad")]
    results = [
        {"id": "good", "row": 0, "error": None, "embedding": np.ones(3, np.float32).tobytes()},
        {"id": "bad", "row": 1, "error": "id 'bad' (manifest row 2): broken", "embedding": b""},
    ]
    assert write_shard(out, 0, rows, results, settings) == (1, 1)
    assert_durable(sync_log, [errors_path(out, 0), shard_path(out, 0)])

    sync_log.clear()
    copy = shutil.copytree(embedded[1], tmp_path / "embedded")
    build_index(copy)
    assert_durable(sync_log, [copy / "index.faiss", copy / "index.json"])
