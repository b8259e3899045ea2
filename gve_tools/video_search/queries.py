"""The queries of a video search: what a query is, a queries file, and the queries given on the command line."""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from gve_tools.errors import GVEToolsError
from gve_tools.repo import remote_module

QUERY_KEYS = ("name", "text", "image", "video", "expected", "instruction")


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
    media = media_module()
    for i, (text, medium) in enumerate(composed):
        suffix = Path(medium).suffix.lower()
        kind = "image" if suffix in media.IMAGE_EXTENSIONS else "video" if suffix in media.VIDEO_EXTENSIONS else None
        if kind is None:
            raise SearchError(f"--composed: {medium} is neither an image nor a video file (by its extension)")
        queries.append(Query(f"composed {i + 1}", text=text, **{kind: _medium(medium, here, "--composed")}))
    return [replace(query, instruction=instruction) for query in queries] if instruction else queries
