"""Long videos as segments in the corpus (`--segment-seconds`): the stages embed a long video with
`model.encode_segments` (each segment equal to its range embedded alone) and everything else whole; the shards hold
(id, start, end) rows; resume, errors and the settings check work with them; the index maps each vector back to its
span, and a search prints ranges and scores videos by their best segment."""

import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gve_tools.corpus import cli, search_cli
from gve_tools.corpus.index import build_index, load_index, search
from gve_tools.corpus.manifest import MANIFEST_FIELDS
from gve_tools.corpus.pipeline import embed_corpus
from gve_tools.corpus.settings import check_settings
from gve_tools.corpus.shards import OutputMismatch, read_corpus, shard_metadata, shard_path, write_shard
from gve_tools.corpus.stages import Embedder, ItemError, preprocess
from gve_tools.media import events, write_video
from gve_tools.repo import query_instruction, remote_module
from tests.corpus.support import as_input, cosines, shard_files, write_manifest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("faiss")

SECONDS = 4.0  # the segments' length in these tests; the tiny checkpoint samples 1 frame a second, 8 at most


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """A 12-second video of four 3-second events (a red square moving right, left, up, then down), at 8 fps."""
    return write_video(tmp_path_factory.mktemp("long") / "events.mp4", events(12, fps=8, event_seconds=3), fps=8)


def spans_of(video, window, stride):
    """The spans `processing_gve.segment_spans` gives a video file, with its duration as the processor reads it."""
    processing = remote_module("processing_gve")
    duration = processing.probe_video(str(video), processing.MediaLimits()).duration
    return processing.segment_spans(duration, window, stride)


def stage_batch(rows):
    """A stage's input: manifest rows with their 0-based `row` and their `shard`."""
    table = {key: [row.get(key) for row in rows] for key in MANIFEST_FIELDS}
    return pa.table({**table, "row": list(range(len(rows))), "shard": [0] * len(rows)})


def stage_outputs(table, dimension):
    """An Embedder's output by id: (vectors [n, D], spans or None, error)."""
    out = {}
    for row in table.to_pylist():
        vectors = np.frombuffer(row["embedding"], np.float32).reshape(-1, dimension).copy()
        spans = list(zip(row["starts"], row["ends"], strict=True)) if row["starts"] is not None else None
        out[row["id"]] = (vectors, spans, row["error"])
    return out


def encode_spans(model, video, spans, **extra):
    return model.encode([{"video": str(video), "video_start": s, "video_end": e, **extra} for s, e in spans])


# ---------------------------------------------------------------------- the stages, called directly (no Ray)


def test_the_stages_embed_long_videos_as_segments_and_the_rest_whole(tiny_path, model, media, long_video, http_root):
    local_long, local_short = media["long_video"], media["video"]  # 10 s and 2 s, also served by http_root
    rows = [
        {"id": "long", "video": str(long_video)},
        {"id": "short", "video": str(local_short)},
        {"id": "image", "image": str(media["image"])},
        {"id": "text", "text": "a red square moving up"},
        {"id": "composed", "text": "a red square", "video": str(long_video)},
        {"id": "range", "video": str(long_video), "video_start": 1.0, "video_end": 7.0},
        {"id": "url-long", "video": f"{http_root}/long.mp4"},
        {"id": "url-short", "video": f"{http_root}/right.mp4"},
        {"id": "instructed", "video": str(long_video), "instruction": "Represent the lecture."},
    ]
    # the model's default stride, whatever it is: the segments must be those encode_segments cuts
    default_spans = model.encode_segments(str(long_video), SECONDS, show_progress_bar=False).spans
    assert len(default_spans) > 1
    remote_spans = model.encode_segments(str(local_long), SECONDS, show_progress_bar=False).spans
    embedder = Embedder(str(tiny_path), None, "cpu", "float32", None, "raise", 4, 16384, 1, segment_seconds=SECONDS)
    decoded = preprocess(stage_batch(rows), str(tiny_path), None, None, "raise", segment_seconds=SECONDS)
    assert decoded.column("error").to_pylist() == [None] * len(rows)
    dimension = model.config.text_config.hidden_size
    whole = [row for row in rows if row["id"] not in ("long", "url-long", "instructed")]
    expected_whole = model.encode([as_input(row) | {k: row[k] for k in row if k.startswith("video_")} for row in whole])
    expected_whole = dict(zip([row["id"] for row in whole], expected_whole, strict=True))
    expected_whole["url-short"] = model.encode([str(local_short)])[0]  # one window: the whole video, kept whole
    for table in (embedder(decoded), embedder(stage_batch(rows))):  # decoded in the tasks, or in the actor
        outputs = stage_outputs(table, dimension)
        vectors, spans, error = outputs["long"]
        assert error is None and spans == default_spans and vectors.shape == (len(spans), dimension)
        assert cosines(vectors, encode_spans(model, long_video, spans)).min() >= 0.9999
        vectors, spans, _ = outputs["url-long"]  # downloaded once by encode_segments in the actor
        assert spans == remote_spans
        assert cosines(vectors, encode_spans(model, local_long, spans)).min() >= 0.9999
        vectors, spans, _ = outputs["instructed"]  # the row's own instruction reaches every segment
        assert spans == default_spans
        reference = encode_spans(model, long_video, spans, instruction="Represent the lecture.")
        assert cosines(vectors, reference).min() >= 0.9999
        assert cosines(vectors, outputs["long"][0]).max() < 0.9999
        for ident, reference in expected_whole.items():  # one vector each, as without segments
            vectors, spans, error = outputs[ident]
            assert (spans, error, vectors.shape) == (None, None, (1, dimension)), ident
            assert cosines(vectors[0], reference) >= 0.9999, ident


def test_a_chosen_stride_cuts_the_spans_of_segment_spans(tiny_path, model, long_video):
    embedder = Embedder(
        str(tiny_path), None, "cpu", "float32", None, "raise", 4, 16384, 1, segment_seconds=SECONDS, segment_stride=1.5
    )
    table = embedder(stage_batch([{"id": "long", "video": str(long_video)}]))
    outputs = stage_outputs(table, model.config.text_config.hidden_size)
    vectors, spans, _ = outputs["long"]
    assert spans == spans_of(long_video, SECONDS, 1.5) and len(spans) == 7  # 0-4, 1.5-5.5, ..., 8-12
    assert cosines(vectors, encode_spans(model, long_video, spans)).min() >= 0.9999


def test_a_bad_long_video_is_named_by_its_row_and_never_written_in_part(tiny_path, media, long_video, http_root):
    rows = [
        {"id": "good", "text": "a red square"},
        {"id": "gone", "video": f"{http_root}/nowhere.mp4"},  # left to encode_segments, in the actor
        {"id": "missing", "video": str(long_video.parent / "nowhere.mp4")},  # cannot be probed: read whole
        {"id": "not-a-video", "video": str(media["text_as_video"])},
    ]
    embedder = Embedder(str(tiny_path), None, "cpu", "float32", None, "skip", 4, 16384, 1, segment_seconds=SECONDS)
    for table in (
        embedder(preprocess(stage_batch(rows), str(tiny_path), None, None, "skip", SECONDS)),
        embedder(stage_batch(rows)),
    ):
        errors = dict(zip(table.column("id").to_pylist(), table.column("error").to_pylist(), strict=True))
        assert errors["good"] is None
        assert errors["gone"].startswith("id 'gone' (manifest row 2): ") and "404" in errors["gone"]
        assert errors["missing"].startswith("id 'missing' (manifest row 3): ") and "file not found" in errors["missing"]
        assert errors["not-a-video"].startswith("id 'not-a-video' (manifest row 4): ")
        assert table.column("embedding").to_pylist()[1:] == [b"", b"", b""]  # no placeholder vector
        assert table.column("starts").to_pylist()[1:] == [None, None, None]

    # a window that cannot be embedded fails its whole video: 0.1 s holds fewer than 2 frames
    embedder = Embedder(str(tiny_path), None, "cpu", "float32", None, "skip", 4, 16384, 1, segment_seconds=0.1)
    table = embedder(stage_batch([{"id": "long", "video": str(long_video)}]))
    assert table.column("error").to_pylist()[0].startswith("id 'long' (manifest row 1): ")
    assert "fewer than 2 frames" in table.column("error").to_pylist()[0]
    assert table.column("embedding").to_pylist() == [b""]

    embedder.on_error = "raise"
    embedder.segment_seconds = SECONDS
    with pytest.raises(ItemError, match=r"^id 'gone' \(manifest row 2\): .*404"):
        embedder(stage_batch(rows[:2]))


# ---------------------------------------------------------------------- shards (no model)


def test_a_shard_holds_a_row_per_segment_with_its_span(tmp_path):
    out = tmp_path / "out"
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True)
    settings = {"dimension": 2, "embedding_dtype": "float32", "shard_size": 5}
    (out / "settings.json").write_text(json.dumps(settings))
    rows = [
        {"id": "text", "text": "a caption"},
        {"id": "long", "video": "long.mp4"},
        {"id": "from-60", "video": "talk.mp4", "video_start": 60},
        {"id": "to-30", "video": "talk.mp4", "video_end": 30},
        {"id": "bad", "video": "bad.mp4"},
    ]
    rows = [{**dict.fromkeys(MANIFEST_FIELDS), **row} for row in rows]
    one = np.array([1.0, 0.0], np.float32).tobytes()
    results = [
        {"id": "text", "row": 0, "error": None, "embedding": one},
        {
            "id": "long",
            "row": 1,
            "error": None,
            "embedding": np.eye(2, dtype=np.float32)[[0, 1, 0]].tobytes(),
            "starts": [0.0, 4.0, 6.0],
            "ends": [4.0, 8.0, 10.0],
        },
        {"id": "from-60", "row": 2, "error": None, "embedding": one, "starts": None, "ends": None},
        {"id": "to-30", "row": 3, "error": None, "embedding": one},
        {"id": "bad", "row": 4, "error": "id 'bad' (manifest row 5): broken", "embedding": b""},
    ]
    assert write_shard(out, 0, rows, results[::-1], settings) == (4, 1)  # results in any order
    corpus = read_corpus(out)
    assert corpus.ids == ["text", "long", "long", "long", "from-60", "to-30"]  # manifest order, segments in time order
    assert corpus.spans == [(None, None), (0.0, 4.0), (4.0, 8.0), (6.0, 10.0), (60.0, None), (0.0, 30.0)]
    np.testing.assert_array_equal(corpus.embeddings[1:4], np.eye(2)[[0, 1, 0]])
    schema = pq.read_schema(shard_path(out, 0))
    assert schema.names == ["id", "start", "end", "embedding"] and str(schema.field("start").type) == "double"
    assert shard_metadata(shard_path(out, 0))["vectors"] == 6 and shard_metadata(shard_path(out, 0))["embedded"] == 4

    # a shard written before spans existed reads as whole items
    table = pq.read_table(shard_path(out, 0)).select(["id", "embedding"])
    pq.write_table(table.replace_schema_metadata(schema.metadata), shard_path(out, 1))
    assert read_corpus(out).spans[6:] == [(None, None)] * 6

    with pytest.raises(ValueError, match="2 vectors for 4 rows and segments"):  # never a shard out of step
        write_shard(
            out,
            2,
            rows[1:2],
            [
                {
                    **results[1],
                    "embedding": np.eye(2, dtype=np.float32).tobytes(),
                    "starts": [0.0, 4.0, 6.0, 8.0],
                    "ends": [4.0, 8.0, 10.0, 12.0],
                }
            ],
            settings,
        )
    assert not shard_path(out, 2).exists()


def test_other_segment_settings_are_refused_by_the_folder(tmp_path):
    settings = {"checkpoint": "gve", "segments": {"seconds": 4.0, "stride": None}}
    check_settings(tmp_path, settings)
    check_settings(tmp_path, settings)  # the same: fine
    for other, shown in [
        ({"seconds": 8.0, "stride": None}, r"\{'seconds': 8.0, 'stride': None\}"),
        ({"seconds": 4.0, "stride": 2.0}, r"\{'seconds': 4.0, 'stride': 2.0\}"),
        (None, "None"),
    ]:
        message = rf"segments: \{{'seconds': 4.0, 'stride': None\}} in the folder, {shown} now\n.*--segment-seconds"
        with pytest.raises(OutputMismatch, match=re.compile(message, re.DOTALL)):
            check_settings(tmp_path, {**settings, "segments": other} if other else {"checkpoint": "gve"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--segment-seconds", "0"], "segment_seconds must be a finite number of seconds above 0, got 0.0"),
        (["--segment-seconds", "nan"], "segment_seconds must be a finite number of seconds above 0, got nan"),
        (["--segment-stride", "2"], "segment_stride needs segment_seconds"),
        (["--segment-seconds", "4", "--segment-stride", "6"], r"segment_stride \(6 s\) must be at most segment_secon"),
        (["--segment-seconds", "4", "--segment-stride", "-1"], "segment_stride must be a finite number of seconds"),
    ],
)
def test_bad_segment_options_are_refused_before_embedding(tmp_path, capsys, options, message):
    argv = ["manifest.jsonl", "--checkpoint", "gve", "--out", str(tmp_path / "out"), *options]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert re.search(r"--segment-seconds/--segment-stride: " + message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=message.split(" ", 1)[1] if "needs" in message else message):
        embed_corpus(tmp_path / "manifest.jsonl", tmp_path / "out", "gve", **_keywords(options))


def _keywords(options):
    pairs = dict(zip(options[::2], options[1::2], strict=True))
    return {name.strip("-").replace("-", "_"): float(value) for name, value in pairs.items()}


# ---------------------------------------------------------------------- search by video (no model, no Ray)


class FixedQuery:
    """A query model that embeds every query as one given vector."""

    def __init__(self, vector):
        self.vector = torch.as_tensor(vector, dtype=torch.float32)

    def encode(self, queries, instruction=None, show_progress_bar=None):
        return self.vector.expand(len(queries), -1).clone()


@pytest.fixture
def many_segments(tmp_path):
    """A folder whose video "a" has 30 segments, all closer to the query (e_0) than any other id's vector."""
    out = tmp_path / "out"
    for folder in ("embeddings", "errors"):
        (out / folder).mkdir(parents=True)
    settings = {"dimension": 8, "embedding_dtype": "float32", "shard_size": 10, "checkpoint": "stub", "revision": None}
    (out / "settings.json").write_text(json.dumps(settings))

    def at(score, axis):  # a unit vector whose cosine with e_0 is `score`
        vector = np.zeros(8, np.float32)
        vector[0], vector[axis] = score, np.sqrt(1 - score**2)
        return vector

    a_scores = np.linspace(0.9, 0.99, 30)[::-1].copy()
    a_scores[:2] = a_scores[1::-1]  # the best segment is a's second
    plan = [
        ("a", [at(s, 1) for s in a_scores], [(2.0 * i, 2.0 * i + 4) for i in range(30)]),
        ("b", [at(0.3, 2), at(0.8, 3), at(0.5, 4)], [(0.0, 8.0), (8.0, 16.0), (12.0, 20.0)]),
        ("c", [at(0.7, 5)], None),
        ("d", [at(0.0, 6)], None),
        ("e", [at(0.6, 7)], "range"),
    ]
    rows, results = [], []
    for number, (ident, vectors, spans) in enumerate(plan):
        row = {**dict.fromkeys(MANIFEST_FIELDS), "id": ident, "video": f"{ident}.mp4"}
        if spans == "range":
            row["video_start"], spans = 60.0, None
        result = {"id": ident, "row": number, "error": None, "embedding": np.stack(vectors).tobytes()}
        if spans:
            result.update(starts=[s for s, _ in spans], ends=[e for _, e in spans])
        rows.append(row)
        results.append(result)
    write_shard(out, 0, rows, results, settings)
    return out, np.eye(8, dtype=np.float32)[0], a_scores


@pytest.mark.parametrize(("vectors", "rescore"), [("float32", None), ("int8", 5)])
def test_by_video_returns_k_distinct_ids_each_by_its_best_segment(many_segments, vectors, rescore):
    out, query, a_scores = many_segments
    build_index(out, vectors=vectors, rescore=rescore)
    model = FixedQuery(query)
    plain = search(out, ["q"], model, k=3)[0]
    assert [hit.id for hit in plain] == ["a", "a", "a"]  # a's segments fill the plain top 3
    if vectors == "float32":
        assert [(hit.start, hit.end) for hit in plain] == [(2.0, 6.0), (0.0, 4.0), (4.0, 8.0)]  # the 2nd is best

    by_video = search(out, ["q"], model, k=3, by_video=True)[0]
    assert [hit.id for hit in by_video] == ["a", "b", "c"]  # searched past a's 30 segments
    assert [(hit.start, hit.end) for hit in by_video] == [(2.0, 6.0), (8.0, 16.0), (None, None)]
    np.testing.assert_allclose([hit.score for hit in by_video], [a_scores.max(), 0.8, 0.7], atol=1e-3)

    everything = search(out, ["q"], model, k=10, by_video=True)[0]  # fewer ids than k: each once
    assert [hit.id for hit in everything] == ["a", "b", "c", "e", "d"]
    assert (everything[3].start, everything[3].end) == (60.0, None)


def test_search_command_prints_ranges_and_ranks_videos(many_segments, monkeypatch, capsys):
    out, query, _ = many_segments
    build_index(out)
    monkeypatch.setattr(search_cli, "load_query_model", lambda *args: FixedQuery(query))
    assert search_cli.main([str(out), "--text", "the moment", "--k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "vectors: float32 (scores: cosines)"
    assert re.fullmatch(r"  1  0\.99\d\d  a  2\.0-6\.0 s", lines[1]) and lines[2].endswith("  a  0.0-4.0 s")
    assert search_cli.main([str(out), "--text", "the moment", "--k", "4", "--by-video"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "vectors: float32 (scores: cosines); by video: each id's best segment"
    assert [line.split()[2:] for line in lines[1:]] == [
        ["a", "2.0-6.0", "s"],
        ["b", "8.0-16.0", "s"],
        ["c"],
        ["e", "60.0", "s-end"],
    ]
    assert search_cli.main([str(out), "--text", "the moment", "--k", "2", "--by-video", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(hit["id"], hit["start"], hit["end"], hit["vectors"]) for hit in hits] == [
        ("a", 2.0, 6.0, "float32"),
        ("b", 8.0, 16.0, "float32"),
    ]


# ---------------------------------------------------------------------- the pipeline on Ray


@pytest.fixture(scope="module")
def segmented(ray_local, media, http_root, long_video, tiny_path, tmp_path_factory):
    """A corpus with long videos, embedded as 4-second segments 2 seconds apart, in three runs: stopped after a
    shard (--max-shards 1), stopped by a bad video (--on-error raise), then finished (--on-error skip)."""
    folder = tmp_path_factory.mktemp("segmented")
    rows = [
        {"id": "events", "video": str(long_video)},  # shard 0: 12 s, segments
        {"id": "caption", "text": "a red square moving up"},
        {"id": "picture", "image": str(media["image"])},
        {"id": "clip", "video": str(media["video"])},  # shard 1: 2 s, whole
        {"id": "remote-long", "video": f"{http_root}/long.mp4"},  # 10 s, segments, downloaded by the actor
        {"id": "captioned", "text": "the events", "video": str(long_video)},  # composed: whole
        {"id": "part", "video": str(long_video), "video_start": 2.0, "video_end": 9.0},  # shard 2: its own span
        {"id": "gone", "video": f"{http_root}/nowhere.mp4"},
        {"id": "remote-clip", "video": f"{http_root}/down.mp4"},  # 3 s: one window, kept whole
    ]
    manifest = write_manifest(folder / "manifest.jsonl", rows)
    out = folder / "out"
    options = {"shard_size": 3, "batch_size": 4, "show_progress_bar": False, "segment_seconds": SECONDS}
    options["segment_stride"] = 2.0
    # Half a CPU per model actor: Ray Data logs the failed run's ItemError with its traceback, which holds that run's
    # executor and so its model actor, and pytest's log capture keeps the record (and the actor, with its CPU)
    # until this setup ends; with a whole CPU each, the resume could not start its own actor beside it.
    options["actor_cpus"] = 0.5
    first = embed_corpus(manifest, out, str(tiny_path), max_shards=1, on_error="skip", **options)
    shard0 = shard_files(out)[0].stat()
    with pytest.raises(ItemError) as failure:
        embed_corpus(manifest, out, str(tiny_path), **options)
    last = embed_corpus(manifest, out, str(tiny_path), on_error="skip", **options)
    return SimpleNamespace(
        rows=rows,
        manifest=manifest,
        out=out,
        options=options,
        first=first,
        failure=failure.value,
        last=last,
        shard0=shard0,
    )


@pytest.mark.ray
def test_the_shards_hold_each_segment_and_resume_gives_the_same(segmented, model, media, long_video):
    out, first, last = segmented.out, segmented.first, segmented.last
    assert first.shards_written == [0] and first.shards_left == 2
    assert (first.segmented, first.vectors) == (1, 5 + 2)  # events' 5 segments, a text and an image
    assert str(segmented.failure).startswith("id 'gone' (manifest row 8): ") and "re-run to resume" in str(
        segmented.failure
    )
    now = shard_files(out)[0].stat()
    assert (now.st_ino, now.st_mtime_ns) == (segmented.shard0.st_ino, segmented.shard0.st_mtime_ns)  # not redone
    assert 0 in last.shards_skipped and last.resumed + last.embedded + last.failed == 9 and last.failed == 1
    assert "segmented:" in last.report()

    corpus = read_corpus(out)
    events_spans = spans_of(long_video, SECONDS, 2.0)
    remote_spans = spans_of(media["long_video"], SECONDS, 2.0)
    assert events_spans == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0), (8.0, 12.0)]
    assert remote_spans == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]
    expected = (
        [("events", span) for span in events_spans]
        + [("caption", (None, None)), ("picture", (None, None)), ("clip", (None, None))]
        + [("remote-long", span) for span in remote_spans]
        + [("captioned", (None, None)), ("part", (2.0, 9.0)), ("remote-clip", (None, None))]
    )
    assert list(zip(corpus.ids, corpus.spans, strict=True)) == expected
    by_id = {row["id"]: row for row in segmented.rows}
    reference = torch.cat(
        [
            encode_spans(model, long_video, events_spans),
            model.encode([as_input(by_id[ident]) for ident in ("caption", "picture", "clip")]),
            encode_spans(model, media["long_video"], remote_spans),
            model.encode(
                [
                    as_input(by_id["captioned"]),
                    {"video": str(long_video), "video_start": 2.0, "video_end": 9.0},
                    str(media["video_2"]),
                ]
            ),
        ]
    )
    assert cosines(corpus.embeddings, reference).min() >= 0.9999
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(error["id"], error["row"]) for error in errors] == [("gone", 8)]
    assert json.loads((out / "settings.json").read_text())["segments"] == {"seconds": 4.0, "stride": 2.0}


@pytest.mark.ray
def test_a_resume_with_other_segment_settings_is_refused(segmented, tiny_path, tmp_path, capsys):
    copy = shutil.copytree(segmented.out, tmp_path / "out")
    options = {key: value for key, value in segmented.options.items() if not key.startswith("segment")}
    folder = r"\{'seconds': 4.0, 'stride': 2.0\} in the folder"
    for segments, now in [
        ({"segment_seconds": 3.0, "segment_stride": 2.0}, r"\{'seconds': 3.0, 'stride': 2.0\} now"),
        ({"segment_seconds": 4.0}, r"\{'seconds': 4.0, 'stride': None\} now"),
        ({}, "None now"),
    ]:
        with pytest.raises(OutputMismatch, match=rf"refusing to mix them:\n  segments: {folder}, {now}"):
            embed_corpus(segmented.manifest, copy, str(tiny_path), **options, **segments)
    argv = [str(segmented.manifest), "--checkpoint", str(tiny_path), "--out", str(copy), "--shard-size", "3"]
    assert cli.main([*argv, "--segment-seconds", "8", "--no-progress"]) == 1
    assert re.search(rf"^error: .*\n  segments: {folder}, .*'seconds': 8.0", capsys.readouterr().err, re.MULTILINE)
    assert [path.read_bytes() for path in shard_files(copy)] == [
        path.read_bytes() for path in shard_files(segmented.out)
    ]


@pytest.mark.ray
def test_the_index_maps_each_segment_back_and_search_finds_the_moment(segmented, model, long_video, tmp_path, capsys):
    out = shutil.copytree(segmented.out, tmp_path / "out")
    build_index(out)
    corpus = read_corpus(out)
    index, ids, description = load_index(out)
    assert index.ntotal == len(ids) == len(corpus.ids) and ids == corpus.ids
    assert [tuple(span) for span in description["spans"]] == corpus.spans

    query = {"video": str(long_video), "video_start": 6.0, "video_end": 9.0}
    vector = model.encode([query], instruction=query_instruction(), show_progress_bar=False)[0].numpy()
    units = corpus.embeddings / np.linalg.norm(corpus.embeddings, axis=1, keepdims=True)
    exact = units @ vector
    order = np.argsort(-exact, kind="stable")
    plain = search(out, [query], model, k=4)[0]
    assert [(hit.id, hit.start, hit.end) for hit in plain] == [(ids[i], *corpus.spans[i]) for i in order[:4]]
    np.testing.assert_allclose([hit.score for hit in plain], exact[order[:4]], atol=1e-4)

    by_video = search(out, [query], model, k=4, by_video=True)[0]
    best = {}
    for position in order:  # each id's best vector, ranked
        best.setdefault(ids[position], position)
    assert [hit.id for hit in by_video] == list(best)[:4]
    for hit in by_video:
        assert (hit.start, hit.end) == corpus.spans[best[hit.id]]
        assert hit.score == pytest.approx(float(exact[best[hit.id]]), abs=1e-4)

    assert search_cli.main([str(out), "--video", str(long_video), "--k", "3", "--by-video"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == 3 and len({line.split()[2] for line in lines}) == 3
    for line in lines:
        rank, score, ident, *span = line.split()
        if ident in ("events", "remote-long", "part"):  # a video with a range prints it
            assert re.fullmatch(r"\d+\.\d+-\d+\.\d+ s", " ".join(span))
        else:
            assert span == []
