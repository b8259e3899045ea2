"""GVE's main job (`make demo`, `scripts/video_search.py`): search a folder of videos with text, image, video and
composed queries; ranked tables in the terminal and a self-contained HTML page. A video longer than one window is
indexed as segments, so that each hit of it names the moment (time range) that matches best.

Modules:
    queries  what a query is (`Query`, with an optional expected moment), a queries file (`load_queries`), the command
             line's queries, a form's (`make_query`); `SearchError`
    index    the videos of a folder (`list_videos`) and their embeddings, whole or as segments (`index_videos`,
             `VideoIndex`), cached on disk by checkpoint identity
    report   the ranking of the videos for each query, each scored by its best segment (`rank`), the moments' check
             (`temporal_iou`, `MOMENT_IOU`) and the terminal tables (`format_results`)
    page     the thumbnails, of a whole video or of a moment, the results as HTML (`results_html`) and the page
             (`write_html`)
    search   a loaded GVE that indexes folders and answers queries (`load_searcher`, `Searcher`), for the job and the
             Space's app (space/app.py)
    uploads  the limits on clips someone uploads to search (`UploadLimits`, `check_uploads`), for the Space's app
    job      the search itself (`video_search`) and its defaults, the bundled model, samples and queries
    cli      the command line (`main`)
"""

from gve_tools.video_search.cli import main
from gve_tools.video_search.index import VideoIndex, cache_identity, index_videos, list_videos, segment_window
from gve_tools.video_search.job import (
    BUNDLED_MODEL,
    BUNDLED_QUERIES,
    BUNDLED_VIDEOS,
    DEFAULT_OUTPUT,
    SearchReport,
    video_search,
)
from gve_tools.video_search.page import THUMBNAIL_FRAMES, THUMBNAIL_HEIGHT, results_html, timed_thumbnails, write_html
from gve_tools.video_search.queries import Query, SearchError, command_line_queries, load_queries
from gve_tools.video_search.report import MOMENT_IOU, Hit, QueryResult, format_results, rank, temporal_iou
from gve_tools.video_search.search import Searcher, load_searcher

__all__ = [
    "BUNDLED_MODEL",
    "BUNDLED_QUERIES",
    "BUNDLED_VIDEOS",
    "DEFAULT_OUTPUT",
    "MOMENT_IOU",
    "THUMBNAIL_FRAMES",
    "THUMBNAIL_HEIGHT",
    "Hit",
    "Query",
    "QueryResult",
    "SearchError",
    "SearchReport",
    "Searcher",
    "VideoIndex",
    "cache_identity",
    "command_line_queries",
    "format_results",
    "index_videos",
    "list_videos",
    "load_queries",
    "load_searcher",
    "main",
    "rank",
    "results_html",
    "segment_window",
    "temporal_iou",
    "timed_thumbnails",
    "video_search",
    "write_html",
]
