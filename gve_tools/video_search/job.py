"""The video search itself: index a folder of videos with a GVE, answer queries, print the tables, write the page.

Videos longer than one window are indexed as segments (see `index`), so every query is answered with the video and
the time range of its best segment; `segments=False` indexes every video whole.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from gve_tools import repo
from gve_tools.repo import ROOT
from gve_tools.video_search.index import list_videos
from gve_tools.video_search.page import write_html
from gve_tools.video_search.queries import Query, SearchError, load_queries
from gve_tools.video_search.report import QueryResult, format_results
from gve_tools.video_search.search import check_segment_flags, load_searcher

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
    check_segment_flags(segments, window, stride)
    folder = _bundled(videos, BUNDLED_VIDEOS, "sample videos folder")
    video_files = list_videos(folder)
    if not isinstance(queries, list):
        queries = load_queries(_bundled(queries, BUNDLED_QUERIES, "sample queries file"))
    if not queries:
        raise SearchError("no queries: give a queries file or --text, --image, --video, --composed")
    model_id = str(_bundled(model, BUNDLED_MODEL, "model") if str(model) == BUNDLED_MODEL else model)
    output = ROOT / DEFAULT_OUTPUT if str(output) == DEFAULT_OUTPUT else Path(output)

    searcher = load_searcher(
        model_id, revision=revision, device=device, dtype=dtype, segments=segments, window=window, stride=stride
    )
    index = searcher.index(folder, output / "cache", videos=video_files)
    skipped = {video_files[i].relative_to(folder).as_posix(): reason for i, reason in index.errors.items()}
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if index.embeddings is None:
        raise SearchError(f"none of the {len(video_files)} videos in {folder} could be embedded")
    indexed = index.videos
    results = searcher.answer(index, folder, queries, top_k)
    print(format_results(results))
    page = write_html(output / "results.html", results, model_id=model_id, folder=folder, count=len(indexed))
    print(f"\nresults page: {page.resolve()}")
    segmented = {path.relative_to(folder).as_posix(): spans for path, spans in index.segments().items()}
    return SearchReport(results, indexed, page, skipped, index.embedded, segmented)
