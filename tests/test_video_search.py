"""scripts/video_search.py, the README's main job: ranking, terminal table, HTML page, cache and errors."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from gve_tools import video_search as vs
from gve_tools.repo import ROOT, query_instruction
from gve_tools.synthetic_media import moving_square, write_image, write_video

QUERY_INSTRUCTION = query_instruction()

IMAGE_DATA = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A video folder (one clip in a subfolder, a hidden one and a non-video to skip) and a queries file."""
    root = tmp_path_factory.mktemp("search")
    videos = root / "videos"
    (videos / "more").mkdir(parents=True)
    (videos / ".hidden").mkdir()
    write_video(videos / "red_right.mp4", moving_square(16, colour="red", direction="right"))
    write_video(videos / "green_down.mp4", moving_square(12, colour="green", direction="down"))
    write_video(videos / "more" / "blue_left.MP4", moving_square(16, colour="blue", direction="left"))
    write_video(videos / ".hidden" / "skipped.mp4", moving_square(8))
    (videos / "notes.txt").write_text("not a video\n")
    media = root / "queries"
    media.mkdir()
    write_image(media / "blue.png", colour="blue")
    write_video(media / "probe.mp4", moving_square(16, colour="white", direction="up"))
    queries = [
        {"name": "red <b>square</b> & co", "text": "a red square moving right", "expected": "red_right.mp4"},
        {"text": "a blue square moving left", "expected": "more/blue_left.MP4"},
        {"name": "by image", "image": "queries/blue.png"},
        {"name": "by video", "video": "queries/probe.mp4"},
        {"name": "composed image", "text": "this square, moving down", "image": "queries/blue.png"},
        {
            "name": "composed video",
            "text": "the same motion in green",
            "video": "queries/probe.mp4",
            "instruction": "Find the video that shows the same motion.",
            "expected": "not_indexed.mp4",
        },
    ]
    (root / "queries.json").write_text(json.dumps(queries))
    return root


def brute_force(model, videos, queries):
    """Cosine scores of each query against each video, straight from `model.encode`."""
    documents = model.encode([str(path) for path in videos])
    return model.encode([query.as_input() for query in queries], instruction=QUERY_INSTRUCTION) @ documents.T


def test_lists_videos_recursively_sorted_without_hidden_ones(clips):
    found = [path.relative_to(clips / "videos").as_posix() for path in vs.list_videos(clips / "videos")]
    assert found == ["green_down.mp4", "more/blue_left.MP4", "red_right.mp4"]


def test_ranks_as_brute_force_cosine_and_writes_table_and_page(tiny_path, model, clips, tmp_path, capsys):
    report = vs.video_search(
        model=str(tiny_path), videos=clips / "videos", queries=clips / "queries.json", top_k=10, output=tmp_path
    )
    out = capsys.readouterr().out
    queries = vs.load_queries(clips / "queries.json")
    assert queries[5].instruction and queries[2].instruction is None
    scores = brute_force(model, report.videos, queries)
    names = [path.relative_to(clips / "videos").as_posix() for path in report.videos]
    assert [result.query for result in report.results] == queries
    for result, row in zip(report.results, scores, strict=True):
        order = row.argsort(descending=True).tolist()
        assert [hit.video for hit in result.hits] == [names[i] for i in order]
        assert [hit.rank for hit in result.hits] == [1, 2, 3]
        torch.testing.assert_close(torch.tensor([hit.score for hit in result.hits]), row[order], atol=1e-5, rtol=0)

    # the terminal table: a header and one line per hit, the expected video marked, a verdict per checked query
    first = report.results[0]
    assert f"[1/6] red <b>square</b> & co  (text: {json.dumps('a red square moving right')})" in out
    for hit in first.hits:
        mark = "  ✓ expected" if hit.video == "red_right.mp4" else ""
        assert f"  {hit.rank:>4}  {hit.score:>7.4f}  {hit.video:<18}{mark}".rstrip() in out.splitlines()
    verdict = "comes first" if first.expected_first else f"comes at rank {first.expected_rank}, not first"
    assert f"the expected video red_right.mp4 {verdict}" in out
    assert "the expected video not_indexed.mp4 is not in the index" in out
    assert "(text + video: " in out and "(image: " in out
    checked = [r for r in report.results if r.query.expected]
    assert f"expected video first: {sum(bool(r.expected_first) for r in checked)}/3 queries" in out
    assert f"results page: {(tmp_path / 'results.html').resolve()}" in out

    # the page: every query and result, escaped, and a thumbnail strip of each hit (6 frames) and of each query medium
    page = (tmp_path / "results.html").read_text()
    assert report.html == tmp_path / "results.html"
    assert "red &lt;b&gt;square&lt;/b&gt; &amp; co" in page and "<b>square" not in page
    for query in queries:
        assert vs.html.escape(query.name) in page
        if query.text:
            assert vs.html.escape(query.text) in page
    for name in names:
        assert page.count(f">{name}</a>") == len(queries)
    thumbnails = IMAGE_DATA.findall(page)
    query_images = 1 + 6 + 1 + 6  # by image, by video (a strip), composed image, composed video
    assert len(thumbnails) == page.count("<img") == query_images + 6 * 3 * len(queries)
    for data in thumbnails:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            assert image.format == "JPEG" and image.height in (vs.THUMBNAIL_HEIGHT, 2 * vs.THUMBNAIL_HEIGHT)


def test_command_line_queries_replace_the_file(tiny_path, model, clips, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(clips)
    code = vs.main(
        [
            *("--model", str(tiny_path), "--videos", "videos", "--output", str(tmp_path), "--top-k", "2"),
            *("--text", "a red square", "a green square", "--video", "queries/probe.mp4"),
            *("--composed", "moving left", "queries/blue.png", "--composed", "in red", "queries/probe.mp4"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for header in (
        "[1/5] text 1",
        "[2/5] text 2",
        "[3/5] video 1",
        "[4/5] composed 1  (text + image: ",
        "[5/5] composed 2",
    ):
        assert header in out
    assert "red <b>square</b>" not in out and "expected video first" not in out
    queries = vs.command_line_queries(
        ["a red square", "a green square"],
        videos=["queries/probe.mp4"],
        composed=[["moving left", "queries/blue.png"], ["in red", "queries/probe.mp4"]],
    )
    videos = vs.list_videos(clips / "videos")
    scores = brute_force(model, videos, queries)
    best = [videos[i].relative_to(clips / "videos").as_posix() for i in scores.argmax(dim=1).tolist()]
    tables = out.split("\n[")[1:]
    for table, name in zip(tables, best, strict=True):
        assert "     1  " in table.splitlines()[2] and name in table.splitlines()[2]


def test_the_cache_spares_embedding_the_videos_again(tiny_path, model, clips, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "videos"
    shutil.copytree(clips / "videos", folder)
    calls = []
    encode = model.encode

    def counting(inputs, instruction=None, **kwargs):
        if instruction is None:  # documents: the videos
            calls.append([os.path.basename(item) for item in inputs])
        return encode(inputs, instruction, **kwargs)

    monkeypatch.setattr(model, "encode", counting)
    monkeypatch.setattr(vs, "load_model", lambda *args, **kwargs: model)
    run = ["--model", str(tiny_path), "--videos", str(folder), "--output", str(tmp_path / "out"), "--text", "a square"]

    assert vs.main(run) == 0
    assert calls == [["green_down.mp4", "blue_left.MP4", "red_right.mp4"]]
    first = capsys.readouterr().out
    assert "indexing 3 videos: 0 from the cache, 3 to embed" in first
    assert len(list((tmp_path / "out" / "cache").glob("videos-*.pt"))) == 1

    assert vs.main(run) == 0
    assert len(calls) == 1  # nothing embedded
    second = capsys.readouterr().out
    assert "indexing 3 videos: 3 from the cache, 0 to embed" in second
    table = lambda text: text.split("\n\n", 1)[1].split("results page")[0]  # noqa: E731
    assert table(first) == table(second)

    # a changed file and a new one are embedded, the others still come from the cache
    write_video(folder / "green_down.mp4", moving_square(12, colour="yellow", direction="down"))
    os.utime(folder / "green_down.mp4", ns=(1, 1))
    write_video(folder / "new.mp4", moving_square(8, colour="white", direction="left"))
    assert vs.main(run) == 0
    assert calls[1:] == [["green_down.mp4", "new.mp4"]]
    assert "indexing 4 videos: 2 from the cache, 2 to embed" in capsys.readouterr().out

    # another model (its folder's files changed) has its own cache
    monkeypatch.setattr(vs, "_model_identity", lambda *args: {"model": "other"})
    assert vs.main(run) == 0
    assert len(calls[2]) == 4


def test_unreadable_videos_are_skipped_and_reported(tiny_path, model, clips, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clips / "videos" / "red_right.mp4", folder)
    (folder / "broken.mp4").write_text("this is not a video\n" * 10)
    monkeypatch.setattr(vs, "load_model", lambda *args, **kwargs: model)
    report = vs.video_search(model=str(tiny_path), videos=folder, queries=[vs.Query("q", text="red")], output=tmp_path)
    assert [path.name for path in report.videos] == ["red_right.mp4"]
    assert list(report.skipped) == ["broken.mp4"]
    assert "skipped broken.mp4: " in capsys.readouterr().err
    assert [hit.video for hit in report.results[0].hits] == ["red_right.mp4"]


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "is not valid JSON"),
        ({"text": "a"}, "must hold a non-empty JSON list of query objects"),
        ([], "must hold a non-empty JSON list of query objects"),
        (["a red square"], "query 1: expected an object with keys among name, text"),
        ([{"text": "a"}, {"txt": "b"}], "query 2: unknown key(s) txt (allowed: name, text, image, video, expected"),
        ([{"name": "only a name"}], "query 1: a query needs a text, an image or a video"),
        ([{"text": ""}], "query 1: text must be non-empty string(s)"),
        ([{"text": "a", "expected": 3}], "query 1: expected must be non-empty string(s)"),
        ([{"image": "missing.png"}], "query 1: missing.png does not exist (looked for "),
        ([{"image": "queries/blue.png", "video": "queries/probe.mp4"}], "a query has an image or a video, not both"),
    ],
)
def test_a_bad_queries_file_is_explained(clips, tmp_path, capsys, content, message):
    queries = write(tmp_path / "q.json", content)
    if "queries/" in json.dumps(content):
        queries = write(clips / "bad_queries.json", content)
    code = None
    with pytest.raises(SystemExit) as exit_info:
        code = vs.main(["--videos", str(clips / "videos"), "--queries", str(queries), "--output", str(tmp_path)])
    assert code is None and exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert str(queries) in err


def test_missing_and_empty_folders_are_explained(clips, tmp_path, capsys, monkeypatch):
    def error(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            vs.main(["--output", str(tmp_path), *args])
        assert exit_info.value.code == 1
        return capsys.readouterr().err

    assert f"error: the video folder {tmp_path / 'nowhere'} does not exist" in error(
        "--videos", str(tmp_path / "nowhere")
    )
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no video here")
    assert f"error: no video files in {tmp_path / 'empty'} (looked for .avi, " in error(
        "--videos", str(tmp_path / "empty")
    )
    assert "queries.json does not exist" in error("--videos", str(clips / "videos"), "--queries", "queries.json")
    assert "--image: nowhere.png does not exist" in error("--image", "nowhere.png")
    assert "--composed: notes.txt is neither an image nor a video" in error("--composed", "a", "notes.txt")
    assert "--top-k must be at least 1" in error("--videos", str(clips / "videos"), "--text", "a", "--top-k", "0")

    # the defaults live in the repository; when they are missing, the error says how to get them
    monkeypatch.setattr(vs, "ROOT", tmp_path)
    err = error()
    assert "the bundled sample videos folder bundled/samples/videos is missing" in err
    assert "python scripts/make_synthetic_data.py bundled/samples --samples" in err and "--videos DIR" in err
    (tmp_path / vs.BUNDLED_VIDEOS).mkdir(parents=True)
    write_video(tmp_path / vs.BUNDLED_VIDEOS / "a.mp4", moving_square(4))
    assert "the bundled sample queries file bundled/samples/queries.json is missing" in error()
    err = error("--text", "a red square")
    assert "the bundled model bundled/gve-tiny-synthetic is missing" in err and "--model" in err


def test_a_model_that_cannot_be_loaded_is_explained(clips, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        vs.main(["--model", str(tmp_path), "--videos", str(clips / "videos"), "--text", "a", "--output", str(tmp_path)])
    assert exit_info.value.code == 1
    assert f"error: could not load the model {tmp_path}: " in capsys.readouterr().err


def test_help_explains_the_job():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "video_search.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for words in ("--model", "--videos", "--queries", "--composed TEXT MEDIA", "--top-k", "--output", "--dtype"):
        assert words in result.stdout, words
    for words in ("bundled/gve-tiny-synthetic", "Alibaba-NLP/GVE-3B", "results.html", "cache", "recursively"):
        assert words in result.stdout, words


@pytest.mark.skipif(
    not (ROOT / vs.BUNDLED_MODEL).is_dir(),
    reason=f"the bundled model {vs.BUNDLED_MODEL} is not in the repository yet (it is being trained)",
)
def test_the_default_run_retrieves_each_sample_caption_clip_first(tmp_path, capsys):
    report = vs.video_search(output=tmp_path)
    checked = [result for result in report.results if result.query.expected is not None]
    captions = [result for result in checked if result.query.kind == "text"]
    assert len(captions) == 7 and len(checked) == 10, "every sample clip's caption, and three other queries"
    misses = {r.query.name: r.expected_rank for r in captions if not r.expected_first}
    assert not misses, misses
    # the summary line counts what the tables show, per kind of query
    kinds = {}
    for result in checked:
        kinds.setdefault(result.query.kind, []).append(result.expected_first)
    counts = ", ".join(f"{kind} {sum(firsts)}/{len(firsts)}" for kind, firsts in kinds.items())
    first = sum(r.expected_first for r in checked)
    assert f"expected video first: {first}/10 queries ({counts})" in capsys.readouterr().out
    assert counts.startswith("text 7/7, ")
    assert report.html.is_file()
