"""The HTML page of a video search: each query with its media, each hit with a strip of thumbnails.

The page is self-contained: the thumbnails are JPEG data URIs, read with decord, else PyAV.
"""

import base64
import html
import io
from pathlib import Path

from gve_tools.video_search.report import QueryResult, is_expected

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


def video_thumbnails(path: str | Path, frames: int = THUMBNAIL_FRAMES, height: int = THUMBNAIL_HEIGHT) -> list[str]:
    """Evenly spaced frames of a video (first to last, at most `frames`), as JPEG data URIs; [] if unreadable."""
    from PIL import Image

    try:
        from decord import VideoReader, cpu

        reader = VideoReader(str(path), ctx=cpu(0))
        pictures = reader.get_batch(_frame_indices(len(reader), frames)).asnumpy()
        return [_data_uri(Image.fromarray(picture), height) for picture in pictures]
    except ImportError:
        pass
    except Exception:
        return []
    try:  # PyAV, where decord is not installed
        import av

        with av.open(str(path)) as container:
            decoded = [frame.to_image() for frame in container.decode(video=0)]
        return [_data_uri(decoded[i], height) for i in _frame_indices(len(decoded), frames)]
    except Exception:
        return []


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
.query-media img { max-height: 144px; margin-right: 2px; border-radius: 3px; }
"""


def write_html(path: Path, results: list[QueryResult], *, model_id: str, folder: Path, count: int) -> Path:
    """A self-contained HTML page of the results: each query with its media, each hit with a thumbnail strip."""
    from tqdm.auto import tqdm

    esc = html.escape
    strips: dict[Path, list[str]] = {}
    videos = {hit.path for result in results for hit in result.hits}
    for video in tqdm(sorted(videos), desc="Thumbnails", unit="video", disable=len(videos) < 2):
        strips[video] = video_thumbnails(video)

    def images(uris: list[str], alt: str) -> str:
        return (
            "".join(f'<img src="{uri}" alt="{esc(alt)}">' for uri in uris) or '<span class="meta">(no preview)</span>'
        )

    body = [
        "<h1>GVE video search</h1>",
        f'<p class="meta">model {esc(model_id)} · {count} videos in {esc(str(folder))} · cosine similarity</p>',
    ]
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
        body.append("<table><tr><th>rank</th><th>score</th><th>video</th><th>frames</th></tr>")
        for hit in result.hits:
            row, mark = ('<tr class="expected">', " ✓") if is_expected(query, hit) else ("<tr>", "")
            body.append(
                f"{row}<td>{hit.rank}</td><td>{hit.score:.4f}</td>"
                f'<td><a href="{esc(hit.path.resolve().as_uri())}">{esc(hit.video)}</a>{mark}</td>'
                f'<td class="strip">{images(strips[hit.path], hit.video)}</td></tr>'
            )
        body += ["</table>", "</section>"]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>GVE video search</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
