"""The main job's moments (#19) end to end on the bundled samples: the long clip is indexed as segments, each query
that names one of its events finds that moment first, and the page shows the moment's own thumbnails, its start and
end and a link and a player from its start; `--no-segments` indexes it whole."""

import base64
import html
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from gve_tools import video_search as vs
from gve_tools.repo import ROOT, query_instruction
from gve_tools.synthetic.samples import LONG_CLIP, LONG_EVENTS, long_scene
from gve_tools.synthetic.world import FPS, render
from gve_tools.text import seconds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / vs.BUNDLED_MODEL).is_dir(), reason=f"no bundled model {vs.BUNDLED_MODEL}"),
]

THUMBNAIL = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" title="([0-9.]+) s">')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The default run, then the same with --no-segments (sharing the cache): each run's report, output and page."""
    output = tmp_path_factory.mktemp("moments")
    found = {}
    for name, segments in (("segments", True), ("whole", False)):
        with pytest.MonkeyPatch.context() as patch:
            printed = io.StringIO()
            patch.setattr("sys.stdout", printed)
            report = vs.video_search(output=output, segments=segments)
        found[name] = (report, printed.getvalue(), report.html.read_text(encoding="utf-8"))
    return found


def moment_results(report):
    return [result for result in report.results if result.query.expected_span is not None]


def section(page: str, name: str) -> str:
    """The page's section of the query called `name`."""
    return next(part for part in page.split("<section>") if f"{html.escape(name)}</h2>" in part)


def test_the_samples_name_each_event_of_the_long_clip_with_its_span():
    queries = json.loads((ROOT / vs.BUNDLED_QUERIES).read_text())
    moments = [query for query in queries if "expected_start" in query]
    spans = long_scene().spans()
    assert [query["text"] for query in moments if "text" in query] == [event.caption() for event in LONG_EVENTS]
    assert len(moments) == 7 and {query["expected"] for query in moments} == {LONG_CLIP}
    assert all((query["expected_start"], query["expected_end"]) in spans for query in moments)
    kinds = {key for query in moments for key in ("text", "image", "video") if key in query}
    assert kinds == {"text", "image", "video"}
    window = 4.0  # the bundled model's max_frames / fps: one event is one window, not on a grid of windows
    assert all(end - start == window for start, end in spans) and any(start % window for start, _ in spans)


def test_each_long_clip_query_finds_its_moment_first(runs):
    report, out, _ = runs["segments"]
    moments = moment_results(report)
    assert len(moments) == 7
    for result in moments:
        first = result.hits[0]
        assert first.video == LONG_CLIP and first.span is not None, (result.query.name, first)
        iou = vs.temporal_iou(first.span, result.query.expected_span)
        assert iou >= vs.MOMENT_IOU and result.moment_first and result.moment_iou == pytest.approx(iou)
        verdict = f"  ✓ the expected moment {LONG_CLIP} [{seconds(result.query.expected_start)}-"
        assert f"{verdict}{seconds(result.query.expected_end)} s] comes first: {first.label}, IoU {iou:.2f}" in out
        assert f"     1  {first.score:>7.4f}  {first.label}" in out  # the table names the range
    assert "moment queries: 7/7 right moment first (IoU >= 0.5; text 5/5, image 1/1, video 1/1)" in out
    assert "(1 longer than the 4 s window, as segments)" in out
    assert set(report.segments) == {LONG_CLIP}
    spans = report.segments[LONG_CLIP]
    assert spans[0][0] == 0 and spans[-1][1] == len(render(long_scene())) / FPS and len(spans) > 1


def test_a_long_clips_score_is_its_best_segments(runs):
    from gve_tools.models import load_model

    report, _, _ = runs["segments"]
    model = load_model(str(ROOT / vs.BUNDLED_MODEL))
    segments = model.encode_segments(str(ROOT / vs.BUNDLED_VIDEOS / LONG_CLIP), show_progress_bar=False)
    assert segments.spans == report.segments[LONG_CLIP]
    moments = moment_results(report)
    queries = model.encode([result.query.as_input() for result in moments], instruction=query_instruction())
    for result, query in zip(moments, queries, strict=True):
        span, score = segments.best(query)
        assert result.hits[0].span == span and result.hits[0].score == pytest.approx(score, abs=1e-5)


def test_the_other_samples_still_find_their_clip(runs):
    """Each short clip's query of every kind finds it first, as before the long clip; the summary counts what the
    tables show."""
    report, out, _ = runs["segments"]
    whole, _, _ = runs["whole"]
    others = [result for result in report.results if result.query.expected_span is None]
    captions = [result for result in others if result.query.kind == "text"]
    assert len(captions) == 7 and len(others) == 10, "every short clip's caption, and three other queries"
    misses = {r.query.name: r.expected_rank for r in others if not r.expected_first}
    assert not misses, misses
    for result, same in zip(others, whole.results[:10], strict=True):
        assert result.query == same.query and result.expected_first == same.expected_first, result.query.name
        assert result.hits[0].video == same.hits[0].video and result.hits[0].span is None
    kinds = {}
    for result in others:
        kinds.setdefault(result.query.kind, []).append(result.expected_first)
    counts = ", ".join(f"{kind} {sum(firsts)}/{len(firsts)}" for kind, firsts in kinds.items())
    assert counts.startswith("text 7/7, ")
    assert f"expected video first: {sum(r.expected_first for r in others)}/10 queries ({counts})" in out
    assert report.html.is_file()


def test_the_page_shows_each_moment_with_its_own_thumbnails_and_a_link_from_its_start(runs):
    report, _, page = runs["segments"]
    frames = render(long_scene())
    for result in moment_results(report):
        first = result.hits[0]
        start, end = first.span
        part = section(page, result.query.name)
        row = part.split('<tr class="expected">', 1)[1].split("</tr>", 1)[0]
        assert row.startswith("<td>1</td>")
        fragment = f"{(ROOT / vs.BUNDLED_VIDEOS / LONG_CLIP).resolve().as_uri()}#t={start:g},{end:g}"
        assert f'<a href="{fragment}">{LONG_CLIP}</a>' in row
        assert f'<video controls preload="metadata" src="{fragment}"></video>' in row
        assert f'data-start="{start:g}" data-end="{end:g}">{seconds(start)}–{seconds(end)} s</div>' in row
        assert "IoU" in part and "expected moment" in part
        thumbnails = THUMBNAIL.findall(row)
        assert len(thumbnails) == vs.THUMBNAIL_FRAMES == row.count("<img")
        times = [float(time) for _, time in thumbnails]
        assert times == sorted(times) and start <= times[0] and times[-1] < end and times[-1] - times[0] >= 3
        for data, time in thumbnails:  # each is the clip's frame at its time, not one from elsewhere in the clip
            with Image.open(io.BytesIO(base64.b64decode(data))) as picture:
                shown = np.asarray(picture.convert("RGB"), dtype=np.float32)
            size = (shown.shape[1], shown.shape[0])
            drawn = [np.asarray(Image.fromarray(frame).resize(size), dtype=np.float32) for frame in frames]
            distances = [np.abs(shown - frame).mean() for frame in drawn]
            index = round(float(time) * FPS)
            assert distances[index] < 5 and distances[index] <= min(distances) + 1, (result.query.name, time)


def test_without_segments_every_video_is_indexed_whole(runs):
    report, out, page = runs["whole"]
    assert report.segments == {}
    assert all(hit.span is None for result in report.results for hit in result.hits)
    assert "longer than the" not in out and "[" not in "".join(hit.label for r in report.results for hit in r.hits)
    for result in moment_results(report):
        assert not result.moment_first
    assert "moment queries: 0/7 right moment first" in out
    assert "#t=" not in page and "<video" not in page and 'class="range"' not in page
