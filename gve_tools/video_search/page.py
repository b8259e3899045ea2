"""The HTML page of a video search: each query with its media, each hit with a strip of thumbnails.

A hit that is a segment of a long video shows that moment: thumbnails of frames inside its range (each titled with
its time), its start and end, a link to the video with the media fragment `#t=start,end` and a player that plays
the video from the start of the range. A hit of a video indexed whole shows a strip of the whole video.

The page is self-contained: the thumbnails are JPEG data URIs, read with decord, else PyAV; the links and players
point at the video files (file:// URIs). `results_html` is the results' part of it, which the Space's app
(space/app.py) shows with the videos' URLs on its server.
"""

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path

from gve_tools.text import seconds
from gve_tools.video_search.report import MOMENT_IOU, Hit, QueryResult, is_expected

THUMBNAIL_FRAMES = 6
THUMBNAIL_HEIGHT = 72


def _data_uri(image, height: int) -> str:
    """A PIL image, scaled to `height` pixels high, as a base64 JPEG data URI."""
    width = max(1, round(image.width * height / image.height))
    buffer = io.BytesIO()
    image.convert("RGB").resize((width, height)).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frame_indices(count: int, frames: int) -> list[int]:
    """`frames` evenly spaced indices of `count` frames, first and last included (all of them when fewer)."""
    taken = min(frames, count)
    return sorted({round(i * (count - 1) / max(taken - 1, 1)) for i in range(taken)}) if count > 0 else []


def _range_indices(count: int, rate: float, span: tuple[float, float] | None, frames: int) -> list[int]:
    """`frames` evenly spaced indices of the frames shown within `span` (start, end) seconds, first to last (frame
    i is shown from i / rate); of all `count` frames when `span` is None."""
    if span is None or rate <= 0:
        return _frame_indices(count, frames)
    first = max(0, math.ceil(span[0] * rate - 1e-6))
    last = min(count - 1, math.ceil(span[1] * rate - 1e-6) - 1)
    return [first + i for i in _frame_indices(last - first + 1, frames)] if last >= first else []


def timed_thumbnails(
    path: str | Path,
    span: tuple[float, float] | None = None,
    frames: int = THUMBNAIL_FRAMES,
    height: int = THUMBNAIL_HEIGHT,
) -> list[tuple[float, str]]:
    """Evenly spaced frames of a video, or of its `span` (start, end) seconds, first to last (at most `frames`), each
    as (its time in seconds, a JPEG data URI); [] if unreadable."""
    from PIL import Image

    try:
        from decord import VideoReader, cpu

        reader = VideoReader(str(path), ctx=cpu(0))
        rate = reader.get_avg_fps()
        indices = _range_indices(len(reader), rate, span, frames)
        pictures = reader.get_batch(indices).asnumpy() if indices else []
        return [
            (i / rate if rate else 0.0, _data_uri(Image.fromarray(picture), height))
            for i, picture in zip(indices, pictures, strict=True)
        ]
    except ImportError:
        pass
    except Exception:
        return []
    try:  # PyAV, where decord is not installed
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 0)
            decoded = [frame.to_image() for frame in container.decode(stream)]
        indices = _range_indices(len(decoded), rate, span, frames)
        return [(i / rate if rate else 0.0, _data_uri(decoded[i], height)) for i in indices]
    except Exception:
        return []


def video_thumbnails(path: str | Path, frames: int = THUMBNAIL_FRAMES, height: int = THUMBNAIL_HEIGHT) -> list[str]:
    """Evenly spaced frames of a video (first to last, at most `frames`), as JPEG data URIs; [] if unreadable."""
    return [uri for _, uri in timed_thumbnails(path, None, frames, height)]


def fragment_uri(hit: Hit) -> str:
    """The hit's video as a file URI; for a segment, with the media fragment of its range (`#t=8,12`)."""
    uri = hit.path.resolve().as_uri()
    return uri if hit.span is None else f"{uri}#t={hit.span[0]:g},{hit.span[1]:g}"


def image_thumbnail(path: str | Path, height: int = THUMBNAIL_HEIGHT * 2) -> list[str]:
    """An image as a one-item list of a JPEG data URI; [] if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return [_data_uri(image, height)]
    except Exception:
        return []


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
section { border-top: 1px solid #ccc; padding: 0.5em 0 1em; }
.meta, .path { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; text-align: left; vertical-align: middle; }
tr.expected { background: #e6f6e6; } .ok { color: #1a7f1a; } .bad { color: #b00020; }
.strip img { height: 72px; margin-right: 2px; border-radius: 3px; }
.range { font-weight: 600; } video { display: block; margin-top: 4px; max-width: 200px; max-height: 120px; }
.query-media img { max-height: 144px; margin-right: 2px; border-radius: 3px; }
"""


def results_html(
    results: list[QueryResult], link: Callable[[Hit], str] = fragment_uri, *, every_player: bool = False
) -> str:
    """The HTML of each query's results (a `<section>` each, styled by `STYLE`): the query with its media, each hit
    with its score and a thumbnail strip (of its moment, with its range, a link from its start and a player, when it
    is a segment). `link` gives a hit's video URL (default: a file URI with the moment's fragment), which the link
    and the player use; `every_player` adds a player to the hits of videos indexed whole too. The page and the
    Space's app differ only in these."""
    from tqdm.auto import tqdm

    esc = html.escape
    strips: dict[tuple[Path, tuple[float, float] | None], list[tuple[float, str]]] = {}
    shown = {(hit.path, hit.span) for result in results for hit in result.hits}
    for video, span in tqdm(sorted(shown, key=str), desc="Thumbnails", unit="strip", disable=len(shown) < 2):
        strips[video, span] = timed_thumbnails(video, span)

    def images(uris: list[str], alt: str) -> str:
        return (
            "".join(f'<img src="{uri}" alt="{esc(alt)}">' for uri in uris) or '<span class="meta">(no preview)</span>'
        )

    def strip(hit: Hit) -> str:
        if hit.span is None:
            return images([uri for _, uri in strips[hit.path, None]], hit.video)
        timed = strips[hit.path, hit.span]
        return (
            "".join(
                f'<img src="{uri}" alt="{esc(hit.video)} at {seconds(time)} s" title="{seconds(time)} s">'
                for time, uri in timed
            )
            or '<span class="meta">(no preview)</span>'
        )

    def video_cell(hit: Hit, mark: str) -> str:
        url = esc(link(hit))
        anchor = f'<a href="{url}">{esc(hit.video)}</a>{mark}'
        if hit.span is None:
            return anchor + (f'<video controls preload="metadata" src="{url}"></video>' if every_player else "")
        start, end = hit.span
        return (
            f'{anchor}<div class="range" data-start="{start:g}" data-end="{end:g}">'
            f"{seconds(start)}–{seconds(end)} s</div>"
            f'<video controls preload="metadata" src="{url}"></video>'
        )

    body = []
    for number, result in enumerate(results, 1):
        query = result.query
        body += ["<section>", f"<h2>{number}. {esc(query.name)}</h2>"]
        if query.text is not None:
            body.append(f'<p class="text">“{esc(query.text)}”</p>')
        for medium, thumbs in ((query.image, image_thumbnail), (query.video, video_thumbnails)):
            if medium is not None:
                body.append(f'<div class="query-media">{images(thumbs(medium), medium.name)}</div>')
                body.append(f'<p class="path">{esc(str(medium))}</p>')
        if query.expected is not None:
            ok = result.expected_first
            verdict = "comes first ✓" if ok else f"rank {result.expected_rank or 'not indexed'} ✗"
            body.append(f'<p class="{"ok" if ok else "bad"}">expected {esc(query.expected)}: {esc(verdict)}</p>')
        if query.expected_span is not None:
            ok, (start, end) = result.moment_first, query.expected_span
            verdict = f"IoU {result.moment_iou:.2f} with the first hit " + ("✓" if ok else f"(below {MOMENT_IOU}) ✗")
            body.append(
                f'<p class="{"ok" if ok else "bad"}">expected moment {esc(query.expected)} '
                f"{seconds(start)}–{seconds(end)} s: {esc(verdict)}</p>"
            )
        body.append("<table><tr><th>rank</th><th>score</th><th>video</th><th>frames</th></tr>")
        for hit in result.hits:
            row, mark = ('<tr class="expected">', " ✓") if is_expected(query, hit) else ("<tr>", "")
            body.append(
                f"{row}<td>{hit.rank}</td><td>{hit.score:.4f}</td>"
                f"<td>{video_cell(hit, mark)}</td>"
                f'<td class="strip">{strip(hit)}</td></tr>'
            )
        body += ["</table>", "</section>"]
    return "\n".join(body)


def write_html(path: Path, results: list[QueryResult], *, model_id: str, folder: Path, count: int) -> Path:
    """A self-contained HTML page of the results (`results_html`, the videos linked as file URIs)."""
    esc = html.escape
    header = [
        "<h1>GVE video search</h1>",
        f'<p class="meta">model {esc(model_id)} · {count} videos in {esc(str(folder))} · cosine similarity</p>',
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>GVE video search</title>'
        f"<style>{STYLE}</style></head><body>\n"
        + "\n".join(header)
        + "\n"
        + results_html(results)
        + "\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
