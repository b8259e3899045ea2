"""gve_tools.video_search.job, the README's main job end to end: ranking, terminal table, HTML page and errors."""

import base64
import html
import io
import json
import re

import pytest
import torch
from PIL import Image

from gve_tools import video_search as vs
from gve_tools.media import moving_square, write_video
from gve_tools.video_search import job, search
from tests.video_search.support import brute_force

IMAGE_DATA = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')


@pytest.mark.slow
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
        assert html.escape(query.name) in page
        if query.text:
            assert html.escape(query.text) in page
    for name in names:
        assert page.count(f">{name}</a>") == len(queries)
    thumbnails = IMAGE_DATA.findall(page)
    query_images = 1 + 6 + 1 + 6  # by image, by video (a strip), composed image, composed video
    assert len(thumbnails) == page.count("<img") == query_images + 6 * 3 * len(queries)
    for data in thumbnails:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            assert image.format == "JPEG" and image.height in (vs.THUMBNAIL_HEIGHT, 2 * vs.THUMBNAIL_HEIGHT)


@pytest.mark.slow
def test_a_query_that_cannot_be_embedded_is_named_with_its_reason(tiny_path, model, clips, tmp_path, monkeypatch):
    (tmp_path / "broken.png").write_text("not an image\n")
    queries = [vs.Query("fine", text="red"), vs.Query("the broken one", image=tmp_path / "broken.png")]
    monkeypatch.setattr(search, "load_model", lambda *args, **kwargs: model)
    with pytest.raises(vs.SearchError, match=r"^query 2 \(the broken one\) could not be embedded: ") as error:
        vs.video_search(model=str(tiny_path), videos=clips / "videos", queries=queries, output=tmp_path)
    assert "inputs[" not in str(error.value)


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
    monkeypatch.setattr(job, "ROOT", tmp_path)
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
    assert f"error: cannot load the model {str(tmp_path)!r}: " in capsys.readouterr().err


# The default run on the bundled samples (their clips, captions and moments) is test_moments.py's.
