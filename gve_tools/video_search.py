#!/usr/bin/env python
"""GVE's main job: index a folder of videos, answer text, image, video and composed queries with ranked results.

With no arguments it runs offline on the bundled tiny GVE (trained on synthetic clips, in
bundled/gve-tiny-synthetic), over the bundled sample clips (bundled/samples/videos) and their sample
queries (bundled/samples/queries.json), each of which names the clip it should retrieve first.
With `--model Alibaba-NLP/GVE-3B` (or a local checkpoint folder) the same command uses a real GVE.

The index is every video file (by extension: .mp4, .mkv, .webm, ...) under --videos, searched
recursively (hidden files and folders are skipped) and sorted by relative path. Videos are embedded
as documents (the checkpoint's default instruction), queries with the query instruction, and the
results are ranked by cosine similarity. Video embeddings are cached under `<output>/cache`, keyed
by the model (its folder's weights and config, or its Hub id and commit), the dtype, the device and
each file's path, size and modification time, so a repeated run only embeds new or changed videos
(the cache keeps the entries of files since removed; delete the folder to start over).

Queries come from a JSON file, a list of objects with any of "text", "image" and "video" (a
composed query has "text" and a medium), an optional "name", an optional "instruction" (default:
the query instruction, "Find the video that matches the query.") and an optional "expected" (the
file name of the video that should come first); media paths are relative to the file. Queries
given on the command line (--text, --image, --video, --composed) replace the file's.

The results are printed as a table per query and written as a self-contained HTML page,
`<output>/results.html`, with a thumbnail strip of each retrieved video.

    python scripts/video_search.py                                    # bundled model, samples and queries
    python scripts/video_search.py --videos ~/clips --text "a dog catching a frisbee" --top-k 3
    python scripts/video_search.py --videos ~/clips --composed "the same scene at night" photo.jpg
    python scripts/video_search.py --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16 --videos ~/clips \\
        --queries my_queries.json
"""

import argparse
import base64
import hashlib
import html
import io
import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gve_tools.repo import ROOT, remote_class

BUNDLED_MODEL = "bundled/gve-tiny-synthetic"
BUNDLED_VIDEOS = "bundled/samples/videos"
BUNDLED_QUERIES = "bundled/samples/queries.json"
DEFAULT_OUTPUT = "build/video-search"
QUERY_KEYS = ("name", "text", "image", "video", "expected", "instruction")
THUMBNAIL_FRAMES = 6
THUMBNAIL_HEIGHT = 72
CACHE_VERSION = 1
DTYPES = ("auto", "float32", "bfloat16", "float16")


class SearchError(RuntimeError):
    """A missing or unusable input (folder, query file, model); the message says what and how to fix it."""


@dataclass(frozen=True)
class Query:
    """One query: a text, an image, a video, or a text with an image or a video (a composed query)."""

    name: str
    text: str | None = None
    image: Path | None = None
    video: Path | None = None
    expected: str | None = None  # file name (or path relative to the video folder) of the video that should come first
    instruction: str | None = None  # the query's own instruction (default: the query instruction)

    def as_input(self) -> str | dict[str, str]:
        """The input `GVEModel.encode` takes for this query."""
        if self.image is None and self.video is None and self.instruction is None:
            return self.text or ""
        item = {"text": self.text, "image": self.image, "video": self.video, "instruction": self.instruction}
        return {key: str(value) for key, value in item.items() if value is not None}

    @property
    def kind(self) -> str:
        """`text`, `image`, `video`, or a composed kind such as `text + image`."""
        return " + ".join(key for key in ("text", "image", "video") if getattr(self, key) is not None)

    def describe(self) -> str:
        """What the query is, in one line: its kind and its parts."""
        parts = [json.dumps(self.text, ensure_ascii=False)] if self.text is not None else []
        parts += [_shown(media) for media in (self.image, self.video) if media is not None]
        return f"{self.kind}: " + " + ".join(parts)


def _shown(path: Path) -> str:
    """A path as printed: relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class Hit:
    rank: int
    video: str  # path relative to the video folder, with / separators
    path: Path
    score: float


@dataclass
class QueryResult:
    query: Query
    hits: list[Hit]
    expected_rank: int | None = None  # rank of the expected video among all indexed videos, if it is indexed

    @property
    def expected_first(self) -> bool | None:
        """Whether the expected video came first (None when the query names none)."""
        return None if self.query.expected is None else self.expected_rank == 1


@dataclass
class SearchReport:
    results: list[QueryResult]
    videos: list[Path]
    html: Path
    skipped: dict[str, str] = field(default_factory=dict)  # videos that could not be embedded -> why
    embedded: int = 0  # videos embedded in this run (the others came from the cache)


def _media_module():
    """GVE's processing module (the repo's copy), whose extension lists decide what is an image or a video."""
    return sys.modules[remote_class("processing_gve.GVEProcessor").__module__]


def list_videos(folder: str | Path) -> list[Path]:
    """Every video file under `folder`, recursively, sorted by relative path; hidden files and folders are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SearchError(
            f"the video folder {folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
        )
    extensions = _media_module().VIDEO_EXTENSIONS
    videos = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in extensions
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    if not videos:
        raise SearchError(f"no video files in {folder} (looked for {', '.join(sorted(extensions))}, recursively)")
    return sorted(videos, key=lambda path: path.relative_to(folder).as_posix())


def _medium(path: str | Path, base: Path, where: str) -> Path:
    """A query's image or video file, relative to `base`; it must exist."""
    resolved = (base / Path(path).expanduser()).resolve()
    if not resolved.is_file():
        raise SearchError(
            f"{where}: {path} does not exist" + (f" (looked for {resolved})" if str(path) != str(resolved) else "")
        )
    return resolved


def load_queries(path: str | Path) -> list[Query]:
    """Read a queries file: a JSON list of {"name"?, "text"?, "image"?, "video"?, "expected"?}, media relative to it."""
    path = Path(path)
    if not path.is_file():
        raise SearchError(f"the queries file {path} does not exist")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SearchError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(items, list) or not items:
        raise SearchError(f"{path} must hold a non-empty JSON list of query objects")
    queries = []
    for index, item in enumerate(items):
        where = f"{path}, query {index + 1}"
        if not isinstance(item, dict):
            raise SearchError(f"{where}: expected an object with keys among {', '.join(QUERY_KEYS)}, got {item!r}")
        unknown = sorted(set(item) - set(QUERY_KEYS))
        if unknown:
            raise SearchError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(QUERY_KEYS)})")
        bad = [key for key, value in item.items() if not isinstance(value, str) or not value.strip()]
        if bad:
            raise SearchError(f"{where}: {', '.join(bad)} must be non-empty string(s)")
        if not {"text", "image", "video"} & item.keys():
            raise SearchError(f"{where}: a query needs a text, an image or a video")
        if {"image", "video"} <= item.keys():
            raise SearchError(f"{where}: a query has an image or a video, not both")
        queries.append(
            Query(
                name=item.get("name", f"query {index + 1}"),
                text=item.get("text"),
                image=_medium(item["image"], path.parent, where) if "image" in item else None,
                video=_medium(item["video"], path.parent, where) if "video" in item else None,
                expected=item.get("expected"),
                instruction=item.get("instruction"),
            )
        )
    return queries


def command_line_queries(
    texts: list[str] = (),
    images: list[str] = (),
    videos: list[str] = (),
    composed: list[list[str]] = (),
    instruction: str | None = None,
) -> list[Query]:
    """Queries from --text, --image, --video and --composed TEXT MEDIA (media relative to the working directory)."""
    here = Path.cwd()
    queries = [Query(f"text {i + 1}", text=text) for i, text in enumerate(texts)]
    queries += [Query(f"image {i + 1}", image=_medium(p, here, "--image")) for i, p in enumerate(images)]
    queries += [Query(f"video {i + 1}", video=_medium(p, here, "--video")) for i, p in enumerate(videos)]
    media = _media_module()
    for i, (text, medium) in enumerate(composed):
        suffix = Path(medium).suffix.lower()
        kind = "image" if suffix in media.IMAGE_EXTENSIONS else "video" if suffix in media.VIDEO_EXTENSIONS else None
        if kind is None:
            raise SearchError(f"--composed: {medium} is neither an image nor a video file (by its extension)")
        queries.append(Query(f"composed {i + 1}", text=text, **{kind: _medium(medium, here, "--composed")}))
    return [replace(query, instruction=instruction) for query in queries] if instruction else queries


def load_model(model_id: str, device: str = "cpu", dtype: str = "auto", revision: str | None = None):
    """Load a GVE checkpoint (local folder or Hub repo id) for inference."""
    import torch
    from transformers import AutoModel

    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    try:
        model = AutoModel.from_pretrained(
            model_id, trust_remote_code=True, dtype=getattr(torch, dtype), revision=revision
        )
    except (OSError, ValueError) as error:
        raise SearchError(f"could not load the model {model_id}: {str(error).strip().splitlines()[0]}") from None
    if not hasattr(model, "encode"):
        raise SearchError(f"{model_id} is not a GVE checkpoint (its model class has no encode)")
    return model.to(device).eval()


def _model_identity(model, model_id: str, revision: str | None) -> dict[str, Any]:
    """What identifies the weights and settings that made the embeddings (part of the cache key)."""
    folder = Path(model_id)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".json"))
        source: dict[str, Any] = {
            "folder": str(folder.resolve()),
            "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
        }
    else:
        source = {"hub": model_id, "revision": revision, "commit": getattr(model.config, "_commit_hash", None)}
    return {"version": CACHE_VERSION, "model": source, "dtype": str(model.dtype), "device": model.device.type}


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def index_videos(model, videos: list[Path], cache_dir: Path, identity: dict[str, Any], batch_size: int = 8):
    """Embed `videos` as documents, reusing and extending the on-disk cache.

    Returns (embeddings of the videos that could be embedded, their positions in `videos`, the
    failures as {position: reason}, how many were embedded now).
    """
    import torch

    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    cache_file = cache_dir / f"videos-{key}.pt"
    cached: dict[str, torch.Tensor] = {}
    if cache_file.is_file():
        try:
            cached = torch.load(cache_file, weights_only=True)["embeddings"]
        except Exception as error:  # an unreadable cache is rebuilt, never fatal
            print(f"ignoring the unreadable cache {cache_file}: {error}", file=sys.stderr)
    keys = [_file_key(path) for path in videos]
    missing = [i for i, k in enumerate(keys) if k not in cached]
    print(f"indexing {len(videos)} videos: {len(videos) - len(missing)} from the cache, {len(missing)} to embed")
    errors: dict[int, str] = {}
    if missing:
        result = model.encode(
            [str(videos[i]) for i in missing], batch_size=batch_size, show_progress_bar=True, on_error="skip"
        )
        for row, position in zip(result.embeddings, result.indices, strict=True):
            cached[keys[missing[position]]] = row.clone()
        errors = {missing[position]: reason for position, reason in result.errors.items()}
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".tmp")
        torch.save({"identity": identity, "embeddings": cached}, partial)
        os.replace(partial, cache_file)
    positions = [i for i, k in enumerate(keys) if k in cached]
    embeddings = torch.stack([cached[keys[i]] for i in positions]) if positions else None
    return embeddings, positions, errors, len(missing) - len(errors)


def rank(query_embeddings, video_embeddings, videos: list[Path], folder: Path, queries: list[Query], top_k: int):
    """Rank the videos for each query by cosine similarity (the embeddings are L2-normalised)."""
    scores = query_embeddings @ video_embeddings.T
    names = [video.relative_to(folder).as_posix() for video in videos]
    results = []
    for query, row in zip(queries, scores, strict=True):
        order = row.argsort(descending=True, stable=True).tolist()
        hits = [Hit(r + 1, names[i], videos[i], float(row[i])) for r, i in enumerate(order[:top_k])]
        expected_rank = None
        if query.expected is not None:
            matches = [r + 1 for r, i in enumerate(order) if query.expected in (names[i], videos[i].name)]
            expected_rank = matches[0] if matches else None
        results.append(QueryResult(query, hits, expected_rank))
    return results


def format_results(results: list[QueryResult]) -> str:
    """The terminal table: per query, its rank, score and video, ✓ beside the expected video."""
    lines = []
    for number, result in enumerate(results, 1):
        query = result.query
        lines += ["", f"[{number}/{len(results)}] {query.name}  ({query.describe()})"]
        width = max(len("video"), *(len(hit.video) for hit in result.hits))
        lines.append(f"  {'rank':>4}  {'score':>7}  video")
        for hit in result.hits:
            mark = "  ✓ expected" if query.expected in (hit.video, hit.path.name) else ""
            lines.append(f"  {hit.rank:>4}  {hit.score:>7.4f}  {hit.video:<{width}}{mark}".rstrip())
        if query.expected is not None:
            if result.expected_first:
                lines.append(f"  ✓ the expected video {query.expected} comes first")
            elif result.expected_rank is None:
                lines.append(f"  ✗ the expected video {query.expected} is not in the index")
            else:
                lines.append(f"  ✗ the expected video {query.expected} comes at rank {result.expected_rank}, not first")
    checked = [result for result in results if result.query.expected is not None]
    if checked:
        by_kind: dict[str, list[bool]] = {}
        for result in checked:
            by_kind.setdefault(result.query.kind, []).append(bool(result.expected_first))
        kinds = ", ".join(f"{kind} {sum(firsts)}/{len(firsts)}" for kind, firsts in by_kind.items())
        first = sum(sum(firsts) for firsts in by_kind.values())
        lines += ["", f"expected video first: {first}/{len(checked)} queries ({kinds})"]
    return "\n".join(lines)


def _data_uri(image, height: int) -> str:
    """A PIL image, scaled to `height` pixels high, as a base64 JPEG data URI."""
    width = max(1, round(image.width * height / image.height))
    buffer = io.BytesIO()
    image.convert("RGB").resize((width, height)).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frame_indices(count: int, frames: int) -> list[int]:
    if count <= 0:
        return []
    return sorted({round(i * (count - 1) / max(frames - 1, 1)) for i in range(min(frames, count))})


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
            expected = query.expected in (hit.video, hit.path.name)
            row, mark = ('<tr class="expected">', " ✓") if expected else ("<tr>", "")
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


# How to get each bundled default back, for the error when it is missing.
BUNDLED_HOW = {
    BUNDLED_MODEL: f"restore it with `git checkout -- {BUNDLED_MODEL}`, or pass --model (e.g. Alibaba-NLP/GVE-3B)",
    BUNDLED_VIDEOS: "make the samples with `python scripts/make_synthetic_data.py bundled/samples --samples`, "
    "or pass --videos DIR",
    BUNDLED_QUERIES: "make the samples with `python scripts/make_synthetic_data.py bundled/samples --samples`, "
    "or pass --queries FILE or --text/--image/--video/--composed",
}


def _bundled(value: str | Path, default: str, what: str) -> Path:
    """A path argument: the default is in the repository, and its absence is an error that says how to fix it."""
    if str(value) != default:
        return Path(value)
    path = ROOT / default
    if not path.exists():
        raise SearchError(f"the bundled {what} {default} is missing (in {ROOT}): {BUNDLED_HOW[default]}")
    return path


def video_search(
    *,
    model: str = BUNDLED_MODEL,
    videos: str | Path = BUNDLED_VIDEOS,
    queries: str | Path | list[Query] = BUNDLED_QUERIES,
    top_k: int = 5,
    output: str | Path = DEFAULT_OUTPUT,
    device: str = "cpu",
    dtype: str = "auto",
    revision: str | None = None,
) -> SearchReport:
    """Index `videos` with `model`, answer `queries` (a queries file or Query objects), print and write the results."""
    from gve_tools.repo import query_instruction

    QUERY_INSTRUCTION = query_instruction()

    if top_k < 1:
        raise SearchError(f"--top-k must be at least 1, got {top_k}")
    folder = _bundled(videos, BUNDLED_VIDEOS, "sample videos folder")
    video_files = list_videos(folder)
    if not isinstance(queries, list):
        queries = load_queries(_bundled(queries, BUNDLED_QUERIES, "sample queries file"))
    if not queries:
        raise SearchError("no queries: give a queries file or --text, --image, --video, --composed")
    model_id = str(_bundled(model, BUNDLED_MODEL, "model") if str(model) == BUNDLED_MODEL else model)
    output = ROOT / DEFAULT_OUTPUT if str(output) == DEFAULT_OUTPUT else Path(output)

    print(f"loading {model_id}")
    gve = load_model(model_id, device, dtype, revision)
    identity = _model_identity(gve, model_id, revision)
    embeddings, positions, errors, embedded = index_videos(gve, video_files, output / "cache", identity)
    skipped = {video_files[i].relative_to(folder).as_posix(): reason for i, reason in errors.items()}
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if embeddings is None:
        raise SearchError(f"none of the {len(video_files)} videos in {folder} could be embedded")
    indexed = [video_files[i] for i in positions]

    try:
        query_embeddings = gve.encode([q.as_input() for q in queries], instruction=QUERY_INSTRUCTION)
    except ValueError as error:  # GVEInputError names the input by position
        raise SearchError(f"a query could not be embedded: {error}") from None
    results = rank(query_embeddings, embeddings, indexed, folder, queries, min(top_k, len(indexed)))
    print(format_results(results))
    page = write_html(output / "results.html", results, model_id=model_id, folder=folder, count=len(indexed))
    print(f"\nresults page: {page.resolve()}")
    return SearchReport(results, indexed, page, skipped, embedded)


def main(argv: list[str] | None = None) -> int:
    import torch

    from gve_tools.repo import query_instruction

    QUERY_INSTRUCTION = query_instruction()

    description, examples = __doc__.split("\n\n    python", 1)
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n    python" + examples.rstrip() + "\n\nexit status: 0 done; 1 a missing or unusable "
        "input (the message says which); 2 bad arguments.",
    )
    parser.add_argument(
        "--model", default=BUNDLED_MODEL, help=f"GVE checkpoint: local folder or Hub repo id (default: {BUNDLED_MODEL})"
    )
    parser.add_argument("--revision", help="Hub branch, tag or commit of --model (default: main)")
    parser.add_argument(
        "--videos",
        default=BUNDLED_VIDEOS,
        help=f"folder of videos to index, searched recursively (default: {BUNDLED_VIDEOS})",
    )
    parser.add_argument(
        "--queries",
        default=BUNDLED_QUERIES,
        help='JSON list of {"name", "text", "image", "video", "instruction", "expected"} objects, media paths '
        f"relative to the file (default: {BUNDLED_QUERIES})",
    )
    parser.add_argument("--text", nargs="+", action="extend", default=[], metavar="TEXT", help="text queries")
    parser.add_argument("--image", nargs="+", action="extend", default=[], metavar="PATH", help="image queries")
    parser.add_argument("--video", nargs="+", action="extend", default=[], metavar="PATH", help="video queries")
    parser.add_argument(
        "--composed",
        nargs=2,
        action="append",
        default=[],
        metavar=("TEXT", "MEDIA"),
        help="a composed query: a text with an image or a video (repeatable)",
    )
    parser.add_argument(
        "--instruction", help=f"instruction of the command-line queries (default: {QUERY_INSTRUCTION!r})"
    )
    parser.add_argument("--top-k", type=int, default=5, help="results shown per query (default: 5)")
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"folder for results.html and the cache (default: {DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--dtype", default="auto", choices=DTYPES, help="weights dtype (default auto: bfloat16 on cuda, else float32)"
    )
    args = parser.parse_args(argv)
    try:
        queries = command_line_queries(args.text, args.image, args.video, args.composed, args.instruction)
        queries = queries or args.queries
        video_search(
            model=args.model,
            videos=args.videos,
            queries=queries,
            top_k=args.top_k,
            output=args.output,
            device=args.device,
            dtype=args.dtype,
            revision=args.revision,
        )
    except SearchError as error:
        parser.exit(1, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
