"""scripts/embed_corpus.py and scripts/search_index.py: Ray Data in local mode on the tiny checkpoint.

Ray starts once for the whole session (the `ray_local` fixture); each `embed_corpus` call runs its
own Ray Data pipeline on it. The runs are few and small, since each starts its model actors afresh.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path
from stat import S_ISDIR

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

pytest.importorskip("ray")
pytest.importorskip("faiss")

from gve_tools import embed_corpus as ec  # noqa: E402
from gve_tools.repo import query_instruction
from gve_tools.search_index import load_index, search  # noqa: E402

QUERY_INSTRUCTION = query_instruction()


@pytest.fixture(scope="session")
def ray_local():
    """Local Ray, started once per test session (or the one already running)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


def write_manifest(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def as_input(row):
    """A manifest row as the input `model.encode` takes."""
    return {key: row[key] for key in ("text", "image", "video", "instruction") if row.get(key) is not None}


def encode_rows(model, rows, **kwargs):
    return model.encode([as_input(row) for row in rows], show_progress_bar=False, **kwargs)


def shard_files(out):
    return sorted((out / "embeddings").glob("part-*.parquet"))


def cosines(a, b):
    return torch.nn.functional.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b), dim=-1)


@pytest.fixture(scope="module")
def corpus_rows(media, tmp_path_factory):
    """Texts, images, videos, composed items, a per-item instruction, an integer id and a relative path."""
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(media["image_2"], folder / "local.jpg")
    return folder, [
        {"id": "t-red", "text": "a red square moving to the right"},
        {"id": "t-green", "text": "a green square moving down", "instruction": "Represent the caption."},
        {"id": "img-blue", "image": str(media["image"])},
        {"id": "img-rel", "image": "local.jpg"},
        {"id": "vid-right", "video": str(media["video"])},
        {"id": "vid-down", "video": str(media["video_2"])},
        {"id": 7, "video": str(media["long_video"])},
        {"id": "comp-ti", "text": "a blue square", "image": str(media["image"])},
        {"id": "comp-tv", "text": "the square goes right", "video": str(media["video"])},
        {"id": "t-long", "text": "an empty dark room " * 30},
    ]


@pytest.fixture(scope="module")
def embedded(ray_local, corpus_rows, tiny_path, tmp_path_factory):
    """One run over the corpus: CPU decoding tasks plus one model actor, shards of 4 rows."""
    folder, rows = corpus_rows
    manifest = write_manifest(folder / "manifest.jsonl", rows)
    out = tmp_path_factory.mktemp("embedded") / "out"
    summary = ec.embed_corpus(manifest, out, str(tiny_path), shard_size=4, batch_size=4, show_progress_bar=False)
    return manifest, out, summary


# ------------------------------------------------------------------ (a) equality


def test_shards_equal_model_encode(embedded, corpus_rows, model, tiny_path):
    manifest, out, summary = embedded
    folder, rows = corpus_rows
    assert (summary.embedded, summary.failed, summary.resumed) == (len(rows), 0, 0)
    assert [path.name for path in shard_files(out)] == [f"part-0000{i}.parquet" for i in range(3)]
    ids, vectors = ec.read_embeddings(out)
    assert ids == [str(row["id"]) for row in rows]  # one to one, in manifest order
    assert vectors.dtype == np.float32 and vectors.shape == (len(rows), model.config.text_config.hidden_size)
    rows = [{**row, "image": str(folder / "local.jpg")} if row["id"] == "img-rel" else row for row in rows]
    reference = encode_rows(model, rows)
    assert cosines(vectors, reference).min() >= 0.9999
    assert (out / "errors.jsonl").read_text() == ""
    assert "embedded:          10 (3 shard(s) written)" in summary.report()


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


# ------------------------------------------------------------------ settings and manifest changes are refused


def test_changed_settings_are_refused(embedded, tiny_path, tmp_path):
    manifest, out, _ = embedded
    copy = shutil.copytree(out, tmp_path / "out")
    with pytest.raises(ec.OutputMismatch, match=r"embedding_dtype: 'float32' in the folder, 'float16' now"):
        ec.embed_corpus(manifest, copy, str(tiny_path), shard_size=4, float16=True)
    with pytest.raises(ec.OutputMismatch, match="shard_size"):
        ec.embed_corpus(manifest, copy, str(tiny_path), shard_size=5)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["text"] = "edited"
    edited = write_manifest(manifest.parent / "edited.jsonl", rows)
    with pytest.raises(ec.OutputMismatch, match=r"part-00000.parquet holds manifest rows 1 to 4"):
        ec.embed_corpus(edited, copy, str(tiny_path), shard_size=4)
    assert sorted(path.name for path in shard_files(copy)) == [path.name for path in shard_files(out)]


# ------------------------------------------------------------------ (b) resume


def test_resume_after_stop_and_failure(ray_local, media, tiny_path, model, tmp_path):
    good = [{"id": f"text-{i}", "text": f"caption number {i} " * (i % 4 + 1)} for i in range(10)]
    good[3] = {"id": "img", "image": str(media["image"])}
    good[6] = {"id": "vid", "video": str(media["video"])}
    bad = {"id": "broken", "video": str(media["one_frame_video"])}
    rows = good[:8] + [bad] + good[8:]  # the bad item in shard 2 (rows 9 to 11 of 11)
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows)
    out = tmp_path / "out"
    options = {"shard_size": 4, "batch_size": 4, "show_progress_bar": False}

    first = ec.embed_corpus(manifest, out, str(tiny_path), max_shards=1, **options)  # stopped after one shard
    assert first.shards_written == [0] and first.shards_left == 2
    shard0 = shard_files(out)[0]
    before = shard0.stat()

    with pytest.raises(ec.ItemError, match=r"id 'broken' \(manifest row 9\).*1 frame") as failure:
        ec.embed_corpus(manifest, out, str(tiny_path), **options)  # a forced failure in the last shard
    assert "re-run to resume" in str(failure.value)
    assert not any(path.name.startswith(".") for path in (out / "embeddings").iterdir())  # no partial shard
    assert "part-00002.parquet" not in {path.name for path in shard_files(out)}
    written_before = {path.name: path.stat() for path in shard_files(out)}

    last = ec.embed_corpus(manifest, out, str(tiny_path), on_error="skip", **options)
    assert last.shards_skipped == [0, 1][: len(written_before)]
    assert last.resumed == 4 * len(written_before)
    assert last.resumed + last.embedded + last.failed == len(rows) and last.failed == 1
    for name, stat in written_before.items():  # finished shards are not recomputed
        now = (out / "embeddings" / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert (shard0.stat().st_ino, shard0.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    ids, vectors = ec.read_embeddings(out)
    assert ids == [row["id"] for row in good]  # every id exactly once, the bad one nowhere
    assert cosines(vectors, encode_rows(model, good)).min() >= 0.9999
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(error["id"], error["row"]) for error in errors] == [("broken", 9)]

    again = ec.embed_corpus(manifest, out, str(tiny_path), on_error="skip", **options)  # nothing left to do
    assert (again.embedded, again.resumed, again.shards_written) == (0, len(good) + 1, [])
    assert len((out / "errors.jsonl").read_text().splitlines()) == 1


# ------------------------------------------------------------------ damaged shards and durable writes


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


@pytest.mark.parametrize("how", ["truncated", "garbage", "scribbled"])
def test_a_damaged_shard_is_named(embedded, tiny_path, tmp_path, capsys, how):
    manifest, out, _ = embedded
    copy = shutil.copytree(out, tmp_path / "out")
    shard = shard_files(copy)[1]
    damage(shard, how)
    message = rf"^shard {re.escape(str(shard))} is damaged \(.+\): delete it and run again to re-embed its rows$"
    with pytest.raises(ec.DamagedShard, match=message):
        ec.read_embeddings(copy)
    with pytest.raises(ec.DamagedShard, match=message):
        ec.build_index(copy)
    if how == "scribbled":
        return  # a resume reads only the shards' footers, and this one's is whole
    # a resume stops at it rather than count its rows as done, and says what to do
    argv = [str(manifest), "--checkpoint", str(tiny_path), "--out", str(copy), "--shard-size", "4", "--no-progress"]
    assert ec.main(argv) == 1
    assert re.search(message[1:], capsys.readouterr().err, re.MULTILINE)


@pytest.fixture
def sync_log(monkeypatch):
    """Every os.fsync and os.replace, in order: ("fsync", inode, is a folder) and ("replace", inode, target)."""
    calls = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(descriptor):
        info = os.fstat(descriptor)
        calls.append(("fsync", info.st_ino, S_ISDIR(info.st_mode)))
        fsync(descriptor)

    def logged_replace(source, target):
        calls.append(("replace", os.stat(source).st_ino, Path(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    return calls


def assert_durable(calls, targets):
    """Each target was renamed into place just after its temporary file was synced, and its folder synced after."""
    assert [call[2] for call in calls if call[0] == "replace"] == targets
    for number, call in enumerate(calls):
        if call[0] == "replace":
            assert calls[number - 1] == ("fsync", call[1], False)
            assert calls[number + 1] == ("fsync", call[2].parent.stat().st_ino, True)


def test_shards_and_index_are_synced_before_the_rename(embedded, tmp_path, sync_log):
    out = tmp_path / "out"
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True)
    settings = {"dimension": 3, "embedding_dtype": "float32", "shard_size": 2}
    rows = [{**dict.fromkeys(ec.MANIFEST_FIELDS), "id": ident, "text": ident} for ident in ("good", "bad")]
    results = [
        {"id": "good", "row": 0, "error": None, "embedding": np.ones(3, np.float32).tobytes()},
        {"id": "bad", "row": 1, "error": "id 'bad' (manifest row 2): broken", "embedding": b""},
    ]
    assert ec.write_shard(out, 0, rows, results, settings) == (1, 1)
    assert_durable(sync_log, [ec.errors_path(out, 0), ec.shard_path(out, 0)])

    sync_log.clear()
    copy = shutil.copytree(embedded[1], tmp_path / "embedded")
    ec.build_index(copy)
    assert_durable(sync_log, [copy / "index.faiss", copy / "index.json"])


# ------------------------------------------------------------------ (c) bad items


def test_bad_items_go_to_the_errors_file(ray_local, media, tiny_path, model, tmp_path):
    good = [
        {"id": "text", "text": "a red square"},
        {"id": "image", "image": str(media["image"])},
        {"id": "video", "video": str(media["video_2"])},
    ]
    bad = [
        {"id": "missing", "video": str(tmp_path / "nowhere.mp4")},
        {"id": "empty", "video": str(media["empty_video"])},
        {"id": "one-frame", "video": str(media["one_frame_video"])},
        {"id": "not-a-video", "video": str(media["text_as_video"])},
    ]
    rows = [bad[0], good[0], bad[1], good[1], bad[2], bad[3], good[2]]
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows)
    out = tmp_path / "out"
    # decoding inside the model actor (encode's own workers), float16 storage
    summary = ec.embed_corpus(
        manifest,
        out,
        str(tiny_path),
        on_error="skip",
        preprocess_mode="actor",
        float16=True,
        shard_size=3,
        show_progress_bar=False,
    )
    assert (summary.embedded, summary.failed) == (3, 4)
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [error["id"] for error in errors] == [item["id"] for item in bad]  # exactly those, in manifest order
    reasons = {error["id"]: error["error"] for error in errors}
    assert "file not found" in reasons["missing"] and "empty (0 bytes)" in reasons["empty"]
    assert "1 frame(s)" in reasons["one-frame"] and "not a readable video" in reasons["not-a-video"]
    assert all(reason.startswith(f"id {key!r} (manifest row ") for key, reason in reasons.items())

    ids, vectors = ec.read_embeddings(out)
    assert ids == [item["id"] for item in good]  # no placeholder vector for the bad ones
    assert pq.read_schema(shard_files(out)[0]).field("embedding").type.value_type == "halffloat"
    assert cosines(vectors, encode_rows(model, good)).min() >= 0.999  # float16 rounding


# ------------------------------------------------------------------ (d) search


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_matches_brute_force(embedded, corpus_rows, model, media, kind):
    _, out, _ = embedded
    folder, rows = corpus_rows
    rows = [{**row, "image": str(folder / "local.jpg")} if row["id"] == "img-rel" else row for row in rows]
    index_path = ec.build_index(out, kind=kind, nlist=2 if kind == "ivf" else None, nprobe=2)
    assert index_path == out / "index.faiss"
    description = json.loads((out / "index.json").read_text())
    assert description["kind"] == kind and description["ids"] == [str(row["id"]) for row in rows]

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
    query_vectors = model.encode(queries, instruction=QUERY_INSTRUCTION, show_progress_bar=False)
    scores = query_vectors @ documents.T
    for result, row_scores in zip(results, scores, strict=True):
        top = torch.topk(row_scores, k)
        assert [ident for ident, _ in result] == [str(rows[i]["id"]) for i in top.indices.tolist()]
        np.testing.assert_allclose([score for _, score in result], top.values.numpy(), atol=1e-4)
    index, ids, _ = load_index(out)
    assert index.ntotal == len(ids) == len(rows)


# ------------------------------------------------------------------ (e) manifest validation


def test_manifest_validation_names_rows_and_fields():
    rows = [
        {"id": "a", "text": "fine"},
        {"text": "no id"},
        {"id": "a", "image": "x.png"},
        {"id": 3, "video": 5},
        {"id": "c"},
        {"id": True, "text": "bool id"},
        {"id": "d", "image": "  "},
        {"id": "e", "text": "x", "vidoe": "typo.mp4"},
    ]
    with pytest.raises(ec.ManifestError) as error:
        ec.validate_manifest(rows, source="m.jsonl")
    message = str(error.value)
    assert message.startswith("m.jsonl: 8 problem(s):")
    for expected in (
        "unknown column(s) ['vidoe']",
        "row 2: field 'id' is missing or empty",
        "row 3: duplicate id 'a' (first at row 1)",
        "row 4: field 'video' must be a string, got int",
        "row 4: no content",
        "row 5: no content; give at least one of 'text', 'image', 'video'",
        "row 6: field 'id' must be a string or an integer, got bool",
        "row 7: field 'image' is an empty string",
    ):
        assert expected in message
    with pytest.raises(ec.ManifestError, match="the manifest has no rows"):
        ec.validate_manifest([])


def test_read_manifest_jsonl_and_parquet(ray_local, tmp_path):
    import pyarrow as pa

    rows = [{"id": "a", "text": "one"}, {"id": "b", "video": "clips/b.mp4", "instruction": "Describe."}]
    empty = {"text": None, "image": None, "video": None, "instruction": None}
    expected = [
        {**empty, "id": "a", "text": "one"},
        {**empty, "id": "b", "video": str(tmp_path / "clips" / "b.mp4"), "instruction": "Describe."},
    ]
    assert ec.read_manifest(write_manifest(tmp_path / "m.jsonl", rows)) == expected
    columns = {key: [row.get(key) for row in rows] for key in ("id", "text", "video", "instruction")}
    pq.write_table(pa.table(columns), tmp_path / "m.parquet")
    assert ec.read_manifest(tmp_path / "m.parquet") == expected

    (tmp_path / "broken.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": \n')
    with pytest.raises(ec.ManifestError, match=r"broken.jsonl: could not read the manifest"):
        ec.read_manifest(tmp_path / "broken.jsonl")
    with pytest.raises(ec.ManifestError, match="manifest not found"):
        ec.read_manifest(tmp_path / "nowhere.jsonl")


def test_help_explains_itself(capsys):
    with pytest.raises(SystemExit):
        ec.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--address", "--concurrency", "--num-gpus", "--on-error", "--float16", "--index", "--max-shards"):
        assert option in text


class FakeRay:
    """What _check_resources and _wait_for_cpus read from Ray: 2 CPUs, `free` of them available, 0.5 more a look."""

    def __init__(self, free: float, frees: bool = True) -> None:
        self.free, self.frees, self.looks = free, frees, 0

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def available_resources(self) -> dict:
        self.looks += 1
        free = self.free
        if self.frees:
            self.free = min(2.0, self.free + 0.5)
        return {"CPU": free}


def test_a_run_waits_for_the_cpus_an_earlier_run_still_holds(monkeypatch):
    plan = {"concurrency": 1, "actor_cpus": 1, "preprocess_mode": "tasks"}
    ray = FakeRay(free=0.0)
    ec._wait_for_cpus(ray, ec._check_resources(ray, plan))
    assert ray.looks == 5 and ray.free == 2.0  # it returned at the first look that found 2 CPUs free
    monkeypatch.setattr(ec, "RELEASE_TIMEOUT", 0.3)
    started = time.monotonic()
    ec._wait_for_cpus(FakeRay(free=1.0, frees=False), 2)  # never freed: it waits out the timeout, then goes on
    assert time.monotonic() - started >= 0.3
    with pytest.raises(ec.PlanError, match=r"need 3 CPUs, and Ray has 2: lower --concurrency"):
        ec._check_resources(FakeRay(free=2.0), {**plan, "concurrency": 2})
