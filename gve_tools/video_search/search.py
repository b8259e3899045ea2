"""A loaded GVE ready to search: index folders of videos and answer queries, with one model, one cache identity and
one set of segment settings. The main job (`job.video_search`) and the Space's app (space/app.py) both search
through it, so that they index, embed queries and rank the same way.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gve_tools.models import load_model
from gve_tools.repo import query_instruction
from gve_tools.video_search.index import VideoIndex, cache_identity, index_videos, list_videos, segment_window
from gve_tools.video_search.queries import Query, SearchError
from gve_tools.video_search.report import QueryResult, rank


def _query_failure(error: ValueError, queries: list[Query]) -> str:
    """Why a query could not be embedded, naming it (a GVEInputError's position is the query's)."""
    position = getattr(error, "position", None)
    if position is None or not 0 <= position < len(queries):
        return f"a query could not be embedded: {error}"
    return f"query {position + 1} ({queries[position].name}) could not be embedded: {getattr(error, 'reason', error)}"


def check_segment_flags(segments: bool, window: float | None, stride: float | None) -> None:
    """The segment settings need segments (their values are checked against the checkpoint's, once it loads)."""
    for name, value in (("--window", window), ("--stride", stride)):
        if value is not None and not segments:
            raise SearchError(f"{name} sets the segments, which --no-segments turns off")


@dataclass
class Searcher:
    """A GVE (`gve`, loaded from `model_id`) with its cache identity and segment settings (see `index`)."""

    gve: Any
    model_id: str
    identity: dict[str, Any]
    segments: bool = True
    window: float | None = None
    stride: float | None = None

    def index(
        self,
        folder: Path,
        cache_dir: Path,
        progress: Callable[[int, int], None] | None = None,
        videos: list[Path] | None = None,
    ) -> VideoIndex:
        """The videos of `folder` (`list_videos`, unless given) and their index, embedded or read from the cache in
        `cache_dir`; `progress(done, total)` is called as videos are embedded."""
        return index_videos(
            self.gve,
            list_videos(folder) if videos is None else videos,
            cache_dir,
            self.identity,
            segments=self.segments,
            window=self.window,
            stride=self.stride,
            progress=progress,
        )

    def answer(self, index: VideoIndex, folder: Path, queries: list[Query], top_k: int) -> list[QueryResult]:
        """Each query's ranking of the indexed videos (at most `top_k` hits), the queries embedded with the query
        instruction unless they carry their own; a query that cannot be embedded raises `SearchError` naming it."""
        if index.embeddings is None:
            raise SearchError(f"none of the videos in {folder} could be embedded")
        try:
            embeddings = self.gve.encode([q.as_input() for q in queries], instruction=query_instruction())
        except ValueError as error:  # GVEInputError gives the query's position and the reason
            raise SearchError(_query_failure(error, queries)) from None
        return rank(
            embeddings, index.embeddings, index.videos, folder, queries, min(top_k, len(index.videos)), index.rows
        )


def load_searcher(
    model: str,
    *,
    revision: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    segments: bool = True,
    window: float | None = None,
    stride: float | None = None,
) -> Searcher:
    """Load `model` and check the segment settings against it (a remote code without `encode_segments` indexes every
    video whole, with a note on stderr); bad settings raise `SearchError`."""
    check_segment_flags(segments, window, stride)
    print(f"loading {model}")
    gve = load_model(model, revision=revision, device=device, dtype=dtype)
    identity = cache_identity(gve, model, revision)
    if segments and not hasattr(gve, "encode_segments"):  # remote code older than segments (#19)
        print(f"{model}'s remote code has no encode_segments: every video is indexed whole", file=sys.stderr)
        segments = False
    if segments:
        try:
            segment_window(gve, window, stride)
        except ValueError as error:  # not a positive finite number, or a stride past the window
            raise SearchError(f"--window/--stride: {error}") from None
    return Searcher(gve, model, identity, segments, window, stride)
