"""The video search itself: index a folder of videos with a GVE, answer queries, print the tables, write the page.

Videos longer than one window are indexed as segments (see `index`), so every query is answered with the video and
the time range of its best segment; `segments=False` indexes every video whole.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from gve_tools import repo
from gve_tools.models import load_model
from gve_tools.repo import ROOT, query_instruction
from gve_tools.video_search.index import cache_identity, index_videos, list_videos, segment_window
from gve_tools.video_search.page import write_html
from gve_tools.video_search.queries import Query, SearchError, load_queries
from gve_tools.video_search.report import QueryResult, format_results, rank

# The defaults, as the help shows them: paths relative to the repository.
BUNDLED_MODEL = repo.BUNDLED_MODEL.relative_to(ROOT).as_posix()
BUNDLED_VIDEOS = (repo.BUNDLED_SAMPLES / "videos").relative_to(ROOT).as_posix()
BUNDLED_QUERIES = (repo.BUNDLED_SAMPLES / "queries.json").relative_to(ROOT).as_posix()
DEFAULT_OUTPUT = "build/video-search"

# How to get each bundled default back, for the error when it is missing.
BUNDLED_HOW = {
    BUNDLED_MODEL: f"restore it with `git checkout -- {BUNDLED_MODEL}`, or pass --model (e.g. Alibaba-NLP/GVE-3B)",
    BUNDLED_VIDEOS: "make the samples with `python scripts/make_synthetic_data.py bundled/samples --samples`, "
    "or pass --videos DIR",
    BUNDLED_QUERIES: "make the samples with `python scripts/make_synthetic_data.py bundled/samples --samples`, "
    "or pass --queries FILE or --text/--image/--video/--composed",
}


@dataclass
class SearchReport:
    results: list[QueryResult]
    videos: list[Path]
    html: Path
    skipped: dict[str, str] = field(default_factory=dict)  # videos that could not be embedded -> why
    embedded: int = 0  # videos embedded in this run (the others came from the cache)
    segments: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # videos indexed as segments


def _bundled(value: str | Path, default: str, what: str) -> Path:
    """A path argument: the default is in the repository, and its absence is an error that says how to fix it."""
    if str(value) != default:
        return Path(value)
    path = ROOT / default
    if not path.exists():
        raise SearchError(f"the bundled {what} {default} is missing (in {ROOT}): {BUNDLED_HOW[default]}")
    return path


def _check_segments(segments: bool, window: float | None, stride: float | None) -> None:
    """The segment settings need segments (their values are checked against the checkpoint's, once it loads)."""
    for name, value in (("--window", window), ("--stride", stride)):
        if value is not None and not segments:
            raise SearchError(f"{name} sets the segments, which --no-segments turns off")


def _query_failure(error: ValueError, queries: list[Query]) -> str:
    """Why a query could not be embedded, naming it (a GVEInputError's position is the query's)."""
    position = getattr(error, "position", None)
    if position is None or not 0 <= position < len(queries):
        return f"a query could not be embedded: {error}"
    return f"query {position + 1} ({queries[position].name}) could not be embedded: {getattr(error, 'reason', error)}"


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
    segments: bool = True,
    window: float | None = None,
    stride: float | None = None,
) -> SearchReport:
    """Index `videos` with `model`, answer `queries` (a queries file or Query objects), print and write the results.

    With `segments` (the default) a video longer than `window` seconds (default: the checkpoint's, `max_frames /
    fps`) is indexed as segments `stride` seconds apart (default: the model's), and each hit of it carries its best
    segment's range; without, every video is indexed whole.
    """
    if top_k < 1:
        raise SearchError(f"--top-k must be at least 1, got {top_k}")
    _check_segments(segments, window, stride)
    folder = _bundled(videos, BUNDLED_VIDEOS, "sample videos folder")
    video_files = list_videos(folder)
    if not isinstance(queries, list):
        queries = load_queries(_bundled(queries, BUNDLED_QUERIES, "sample queries file"))
    if not queries:
        raise SearchError("no queries: give a queries file or --text, --image, --video, --composed")
    model_id = str(_bundled(model, BUNDLED_MODEL, "model") if str(model) == BUNDLED_MODEL else model)
    output = ROOT / DEFAULT_OUTPUT if str(output) == DEFAULT_OUTPUT else Path(output)

    print(f"loading {model_id}")
    gve = load_model(model_id, revision=revision, device=device, dtype=dtype)
    identity = cache_identity(gve, model_id, revision)
    if segments and not hasattr(gve, "encode_segments"):  # remote code older than segments (#19)
        print(f"{model_id}'s remote code has no encode_segments: every video is indexed whole", file=sys.stderr)
        segments = False
    if segments:
        try:
            segment_window(gve, window, stride)
        except ValueError as error:  # not a positive finite number, or a stride past the window
            raise SearchError(f"--window/--stride: {error}") from None
    index = index_videos(gve, video_files, output / "cache", identity, segments=segments, window=window, stride=stride)
    skipped = {video_files[i].relative_to(folder).as_posix(): reason for i, reason in index.errors.items()}
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if index.embeddings is None:
        raise SearchError(f"none of the {len(video_files)} videos in {folder} could be embedded")
    indexed = index.videos

    try:
        query_embeddings = gve.encode([q.as_input() for q in queries], instruction=query_instruction())
    except ValueError as error:  # GVEInputError gives the query's position and the reason
        raise SearchError(_query_failure(error, queries)) from None
    top = min(top_k, len(indexed))
    results = rank(query_embeddings, index.embeddings, indexed, folder, queries, top, index.rows)
    print(format_results(results))
    page = write_html(output / "results.html", results, model_id=model_id, folder=folder, count=len(indexed))
    print(f"\nresults page: {page.resolve()}")
    segmented = {path.relative_to(folder).as_posix(): spans for path, spans in index.segments().items()}
    return SearchReport(results, indexed, page, skipped, index.embedded, segmented)
