"""gve_tools.corpus.pipeline: runs into a folder refuse other settings and changed rows, resume where they
stopped, and leave bad items out of the shards (listed in the errors files)."""

import json
import shutil

import pytest

from gve_tools.corpus.pipeline import embed_corpus
from gve_tools.corpus.shards import OutputMismatch, read_embeddings
from gve_tools.corpus.stages import ItemError
from tests.corpus.support import cosines, encode_rows, shard_files, write_manifest

pq = pytest.importorskip("pyarrow.parquet")


@pytest.mark.ray
def test_changed_settings_are_refused(embedded, tiny_path, tmp_path):
    manifest, out, _ = embedded
    copy = shutil.copytree(out, tmp_path / "out")
    with pytest.raises(OutputMismatch, match=r"embedding_dtype: 'float32' in the folder, 'float16' now"):
        embed_corpus(manifest, copy, str(tiny_path), shard_size=4, float16=True)
    with pytest.raises(OutputMismatch, match="shard_size"):
        embed_corpus(manifest, copy, str(tiny_path), shard_size=5)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["text"] = "edited"
    edited = write_manifest(manifest.parent / "edited.jsonl", rows)
    with pytest.raises(OutputMismatch, match=r"part-00000.parquet holds manifest rows 1 to 4"):
        embed_corpus(edited, copy, str(tiny_path), shard_size=4)
    assert sorted(path.name for path in shard_files(copy)) == [path.name for path in shard_files(out)]


@pytest.mark.ray
@pytest.mark.slow
def test_resume_after_stop_and_failure(ray_local, media, tiny_path, model, tmp_path):
    good = [{"id": f"text-{i}", "text": f"caption number {i} " * (i % 4 + 1)} for i in range(10)]
    good[3] = {"id": "img", "image": str(media["image"])}
    good[6] = {"id": "vid", "video": str(media["video"])}
    bad = {"id": "broken", "video": str(media["one_frame_video"])}
    rows = good[:8] + [bad] + good[8:]  # the bad item in shard 2 (rows 9 to 11 of 11)
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows)
    out = tmp_path / "out"
    options = {"shard_size": 4, "batch_size": 4, "show_progress_bar": False}

    first = embed_corpus(manifest, out, str(tiny_path), max_shards=1, **options)  # stopped after one shard
    assert first.shards_written == [0] and first.shards_left == 2
    shard0 = shard_files(out)[0]
    before = shard0.stat()

    with pytest.raises(ItemError, match=r"id 'broken' \(manifest row 9\).*1 frame") as failure:
        embed_corpus(manifest, out, str(tiny_path), **options)  # a forced failure in the last shard
    assert "re-run to resume" in str(failure.value)
    # the worker's message, then what the run did: none of Ray's wrapper or retry advice
    assert str(failure.value).startswith("id 'broken' (manifest row 9): ") and "\n" not in str(failure.value)
    assert not any(path.name.startswith(".") for path in (out / "embeddings").iterdir())  # no partial shard
    assert "part-00002.parquet" not in {path.name for path in shard_files(out)}
    written_before = {path.name: path.stat() for path in shard_files(out)}

    last = embed_corpus(manifest, out, str(tiny_path), on_error="skip", **options)
    assert last.shards_skipped == [0, 1][: len(written_before)]
    assert last.resumed == 4 * len(written_before)
    assert last.resumed + last.embedded + last.failed == len(rows) and last.failed == 1
    for name, stat in written_before.items():  # finished shards are not recomputed
        now = (out / "embeddings" / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert (shard0.stat().st_ino, shard0.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    ids, vectors = read_embeddings(out)
    assert ids == [row["id"] for row in good]  # every id exactly once, the bad one nowhere
    assert cosines(vectors, encode_rows(model, good)).min() >= 0.9999
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(error["id"], error["row"]) for error in errors] == [("broken", 9)]

    again = embed_corpus(manifest, out, str(tiny_path), on_error="skip", **options)  # nothing left to do
    assert (again.embedded, again.resumed, again.shards_written) == (0, len(good) + 1, [])
    assert len((out / "errors.jsonl").read_text().splitlines()) == 1


@pytest.mark.ray
@pytest.mark.slow
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
    summary = embed_corpus(
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
    assert not any("inputs[" in reason for reason in reasons.values())  # named by id and row, not by position

    ids, vectors = read_embeddings(out)
    assert ids == [item["id"] for item in good]  # no placeholder vector for the bad ones
    assert pq.read_schema(shard_files(out)[0]).field("embedding").type.value_type == "halffloat"
    assert cosines(vectors, encode_rows(model, good)).min() >= 0.999  # float16 rounding
