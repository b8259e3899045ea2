"""The queries of a video search: what a query is, a queries file, and the queries given on the command line.

A queries file is a JSON list of objects, each with any of "text", "image" and "video" (a composed query has
"text" and a medium), an optional "name", an optional "instruction" and an optional "expected": the video that
should come first (its file name, or its path relative to the video folder). A query that names one moment of a
video also gives that moment's span in seconds, "expected_start" and "expected_end" (numbers, with "expected"):
it is answered right when its first hit is that video with a time range whose temporal IoU with the span is at
least 0.5 (`report.MOMENT_IOU`). Media paths are relative to the file.
"""

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from gve_tools.errors import GVEToolsError
from gve_tools.repo import remote_module

QUERY_KEYS = ("name", "text", "image", "video", "expected", "expected_start", "expected_end", "instruction")
SPAN_KEYS = ("expected_start", "expected_end")  # numbers (seconds); every other key is a non-empty string


class SearchError(GVEToolsError, RuntimeError):
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
    expected_start: float | None = None  # the expected moment of the expected video, in seconds (both or neither)
    expected_end: float | None = None

    @property
    def expected_span(self) -> tuple[float, float] | None:
        """The (start, end) of the moment the query names, in seconds; None when it names a whole video or none."""
        if self.expected_start is None or self.expected_end is None:
            return None
        return (self.expected_start, self.expected_end)

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


def media_module() -> ModuleType:
    """GVE's processing module (the repo's copy), whose extension lists decide what is an image or a video."""
    return remote_module("processing_gve")


def _medium(path: str | Path, base: Path, where: str) -> Path:
    """A query's image or video file, relative to `base`; it must exist."""
    resolved = (base / Path(path).expanduser()).resolve()
    if not resolved.is_file():
        raise SearchError(
            f"{where}: {path} does not exist" + (f" (looked for {resolved})" if str(path) != str(resolved) else "")
        )
    return resolved


def _span_problem(item: dict) -> str | None:
    """What is wrong with a query object's expected moment, if anything."""
    given = [key for key in SPAN_KEYS if key in item]
    if not given:
        return None
    if len(given) == 1:
        return f"{given[0]} needs {SPAN_KEYS[1 - SPAN_KEYS.index(given[0])]} (a moment has both)"
    if "expected" not in item:
        return "expected_start and expected_end need expected (the video the moment is in)"
    values = [item[key] for key in SPAN_KEYS]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return f"expected_start and expected_end must be numbers of seconds, got {values[0]!r} and {values[1]!r}"
    if not 0 <= values[0] < values[1]:
        return f"expected_start must be at least 0 and below expected_end, got {values[0]:g} and {values[1]:g}"
    return None


def _parts_problem(parts) -> str | None:
    """What is wrong with a query made of `parts` (among text, image and video), if anything."""
    if not {"text", "image", "video"} & set(parts):
        return "a query needs a text, an image or a video"
    if {"image", "video"} <= set(parts):
        return "a query has an image or a video, not both"
    return None


def make_query(
    text: str | None = None, image: str | Path | None = None, video: str | Path | None = None, instruction: str = ""
) -> Query:
    """A query from a form's fields (empty ones left out), named by its kind; a query without a part, with both an
    image and a video, or with a missing file raises `SearchError`."""
    text = text.strip() if text and text.strip() else None
    parts = {key: value for key, value in (("text", text), ("image", image), ("video", video)) if value}
    problem = _parts_problem(parts)
    if problem:
        raise SearchError(problem)
    media = {key: _medium(value, Path.cwd(), key) for key, value in parts.items() if key != "text"}
    query = Query("query", text=text, instruction=(instruction or "").strip() or None, **media)
    return replace(query, name=query.kind)


def load_queries(path: str | Path) -> list[Query]:
    """Read a queries file (the module's docstring says its format): its queries, media resolved relative to it."""
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
        bad = [
            key
            for key, value in item.items()
            if key not in SPAN_KEYS and (not isinstance(value, str) or not value.strip())
        ]
        if bad:
            raise SearchError(f"{where}: {', '.join(bad)} must be non-empty string(s)")
        problem = _span_problem(item)
        if problem:
            raise SearchError(f"{where}: {problem}")
        problem = _parts_problem(item.keys())
        if problem:
            raise SearchError(f"{where}: {problem}")
        queries.append(
            Query(
                name=item.get("name", f"query {index + 1}"),
                text=item.get("text"),
                image=_medium(item["image"], path.parent, where) if "image" in item else None,
                video=_medium(item["video"], path.parent, where) if "video" in item else None,
                expected=item.get("expected"),
                instruction=item.get("instruction"),
                expected_start=float(item["expected_start"]) if "expected_start" in item else None,
                expected_end=float(item["expected_end"]) if "expected_end" in item else None,
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
    media = media_module()
    for i, (text, medium) in enumerate(composed):
        suffix = Path(medium).suffix.lower()
        kind = "image" if suffix in media.IMAGE_EXTENSIONS else "video" if suffix in media.VIDEO_EXTENSIONS else None
        if kind is None:
            raise SearchError(f"--composed: {medium} is neither an image nor a video file (by its extension)")
        queries.append(Query(f"composed {i + 1}", text=text, **{kind: _medium(medium, here, "--composed")}))
    return [replace(query, instruction=instruction) for query in queries] if instruction else queries
