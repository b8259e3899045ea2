"""gve_tools.corpus.manifest: checking rows, naming every problem, and reading JSONL and Parquet with Ray Data."""

import hashlib
import json

import pytest

from gve_tools.corpus.manifest import ManifestError, read_manifest, shard_digest, validate_manifest
from gve_tools.errors import GVEToolsError
from tests.corpus.support import write_manifest


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
    with pytest.raises(ManifestError) as error:
        validate_manifest(rows, source="m.jsonl")
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
    with pytest.raises(ManifestError, match="the manifest has no rows"):
        validate_manifest([])
    assert isinstance(error.value, GVEToolsError) and isinstance(error.value, ValueError)


def test_rows_are_normalised_and_their_digest_follows_them(tmp_path):
    rows = validate_manifest(
        [{"id": 1, "text": "  ", "image": "a.png"}, {"id": "u", "video": "https://example.org/v.mp4"}], base=tmp_path
    )
    assert rows[0] == {
        "id": "1",
        "text": None,
        "image": str(tmp_path / "a.png"),
        "video": None,
        "instruction": None,
        "video_start": None,
        "video_end": None,
    }
    assert rows[1]["video"] == "https://example.org/v.mp4"
    assert shard_digest(rows) == shard_digest([dict(row) for row in rows])
    assert shard_digest(rows) != shard_digest([{**rows[0], "text": "edited"}, rows[1]])
    assert shard_digest(rows) != shard_digest(rows[::-1])


def test_time_ranges_are_checked_by_the_remote_codes_rule_and_digested_only_when_given():
    rows = [
        {"id": "whole", "video": "v.mp4"},
        {"id": "part", "video": "v.mp4", "video_start": 2.5, "video_end": 7},
        {"id": "reversed", "video": "v.mp4", "video_start": 5, "video_end": 1},
        {"id": "negative", "video": "v.mp4", "video_start": -2},
        {"id": "text", "text": "no video", "video_end": 3},
        {"id": "string", "video": "v.mp4", "video_start": "12"},
    ]
    with pytest.raises(ManifestError) as error:
        validate_manifest(rows, source="m.jsonl")
    message = str(error.value)
    assert message.startswith("m.jsonl: 4 problem(s):")
    for expected in (
        "row 3: field 'video_end': video_end (1 s) must be after video_start (5 s)",
        "row 4: field 'video_start': video_start must be a finite number of seconds, at least 0, got -2",
        "row 5: field 'video_end': video_end needs a video file or URL; the input has no video",
        "row 6: field 'video_start': video_start must be a finite number of seconds, at least 0, got '12'",
    ):
        assert expected in message
    whole, part = validate_manifest(rows[:2])
    assert part["video_start"] == 2.5 and part["video_end"] == 7
    # a row without a range digests as before ranges existed (earlier outputs still resume); a range counts
    old_fields = ("id", "text", "image", "video", "instruction")
    old_digest = hashlib.sha256(json.dumps([whole[key] for key in old_fields]).encode()).hexdigest()[:32]
    assert shard_digest([whole]) == old_digest
    assert (
        shard_digest([part]) != shard_digest([{**part, "video_end": 8}]) != shard_digest([{**part, "video_end": None}])
    )


@pytest.mark.ray
@pytest.mark.slow
def test_read_manifest_jsonl_and_parquet(ray_local, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")

    rows = [
        {"id": "a", "text": "one"},
        {"id": "b", "video": "clips/b.mp4", "instruction": "Describe."},
        {"id": "c", "video": "clips/b.mp4", "video_start": 1.5, "video_end": 4.0},
    ]
    empty = {"text": None, "image": None, "video": None, "instruction": None, "video_start": None, "video_end": None}
    expected = [
        {**empty, "id": "a", "text": "one"},
        {**empty, "id": "b", "video": str(tmp_path / "clips" / "b.mp4"), "instruction": "Describe."},
        {**empty, "id": "c", "video": str(tmp_path / "clips" / "b.mp4"), "video_start": 1.5, "video_end": 4.0},
    ]
    assert read_manifest(write_manifest(tmp_path / "m.jsonl", rows)) == expected
    names = ("id", "text", "video", "instruction", "video_start", "video_end")
    columns = {key: [row.get(key) for row in rows] for key in names}
    pq.write_table(pa.table(columns), tmp_path / "m.parquet")
    assert read_manifest(tmp_path / "m.parquet") == expected

    (tmp_path / "broken.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": \n')
    with pytest.raises(ManifestError, match=r"broken.jsonl: could not read the manifest: \S") as error:
        read_manifest(tmp_path / "broken.jsonl")
    # the parser's own message, on one line: not Ray's wrapper, its retry advice or an empty marker's name
    reason = str(error.value).split("could not read the manifest: ", 1)[1]
    assert "\n" not in reason and "SystemException" not in reason and "retr" not in reason
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nowhere.jsonl")
