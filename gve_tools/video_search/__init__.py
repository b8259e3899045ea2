"""GVE's main job (`make demo`, `scripts/video_search.py`): search a folder of videos with text, image, video and
composed queries; ranked tables in the terminal and a self-contained HTML page.

Modules:
    queries  what a query is (`Query`), a queries file (`load_queries`), the command line's queries; `SearchError`
    index    the videos of a folder (`list_videos`) and their embeddings, cached on disk by checkpoint identity
    report   the ranking of the videos for each query (`rank`) and the terminal tables (`format_results`)
    page     the thumbnails and the HTML page (`write_html`)
    job      the search itself (`video_search`) and its defaults, the bundled model, samples and queries
    cli      the command line (`main`)
"""

from gve_tools.video_search.cli import main
from gve_tools.video_search.index import cache_identity, index_videos, list_videos
from gve_tools.video_search.job import (
    BUNDLED_MODEL,
    BUNDLED_QUERIES,
    BUNDLED_VIDEOS,
    DEFAULT_OUTPUT,
    SearchReport,
    video_search,
)
from gve_tools.video_search.page import THUMBNAIL_FRAMES, THUMBNAIL_HEIGHT, write_html
from gve_tools.video_search.queries import Query, SearchError, command_line_queries, load_queries
from gve_tools.video_search.report import Hit, QueryResult, format_results, rank

__all__ = [
    "BUNDLED_MODEL",
    "BUNDLED_QUERIES",
    "BUNDLED_VIDEOS",
    "DEFAULT_OUTPUT",
    "THUMBNAIL_FRAMES",
    "THUMBNAIL_HEIGHT",
    "Hit",
    "Query",
    "QueryResult",
    "SearchError",
    "SearchReport",
    "cache_identity",
    "command_line_queries",
    "format_results",
    "index_videos",
    "list_videos",
    "load_queries",
    "main",
    "rank",
    "video_search",
    "write_html",
]
