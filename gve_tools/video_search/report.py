"""The results of a video search: the ranking of the indexed videos for each query, and the terminal tables.

A video indexed as segments (time windows) is scored by its best segment for the query, and its hit carries that
segment's time range; a video indexed whole has a hit without a range. A query that names a moment
(`Query.expected_span`) is answered right when its first hit is the expected video with a range whose temporal
IoU with the moment is at least `MOMENT_IOU`.
"""

from dataclasses import dataclass
from pathlib import Path

from gve_tools.evaluation.moments import temporal_iou
from gve_tools.text import seconds
from gve_tools.video_search.queries import Query

MOMENT_IOU = 0.5  # the temporal IoU at which a hit's range is the expected moment


@dataclass
class Hit:
    rank: int
    video: str  # path relative to the video folder, with / separators
    path: Path
    score: float
    start: float | None = None  # the best segment's time range in seconds; None for a video indexed whole
    end: float | None = None

    @property
    def span(self) -> tuple[float, float] | None:
        return None if self.start is None or self.end is None else (self.start, self.end)

    @property
    def label(self) -> str:
        """The video, and the range of its best segment when it has one: `long.mp4 [8.0-12.0 s]`."""
        span = self.span
        return self.video if span is None else f"{self.video} [{seconds(span[0])}-{seconds(span[1])} s]"


@dataclass
class QueryResult:
    query: Query
    hits: list[Hit]
    expected_rank: int | None = None  # rank of the expected video among all indexed videos, if it is indexed

    @property
    def expected_first(self) -> bool | None:
        """Whether the expected video came first (None when the query names none)."""
        return None if self.query.expected is None else self.expected_rank == 1

    @property
    def moment_iou(self) -> float | None:
        """The temporal IoU of the first hit's range with the expected moment (None when the query names no moment);
        0 when the first hit is another video or has no range (a video indexed whole)."""
        span = self.query.expected_span
        if span is None:
            return None
        first = self.hits[0] if self.hits else None
        if not self.expected_first or first is None or first.span is None:
            return 0.0
        return temporal_iou(first.span, span)

    @property
    def moment_first(self) -> bool | None:
        """Whether the first hit is the expected moment: the expected video, with a range of IoU >= `MOMENT_IOU`
        with the expected span (None when the query names no moment)."""
        iou = self.moment_iou
        return None if iou is None else iou >= MOMENT_IOU


def is_expected(query: Query, hit: Hit) -> bool:
    """Whether `hit` is the video `query` names as expected (by its relative path or its file name)."""
    return query.expected in (hit.video, hit.path.name)


def rank(
    query_embeddings,
    video_embeddings,
    videos: list[Path],
    folder: Path,
    queries: list[Query],
    top_k: int,
    rows: list[tuple[int, tuple[float, float] | None]] | None = None,
):
    """Rank the videos for each query by cosine similarity (the embeddings are L2-normalised).

    `video_embeddings` has a row per whole video or per segment, and `rows` says whose each is: (position in
    `videos`, the segment's (start, end), None for a whole video); by default one row per video, whole. A video's
    score is that of its best row, and its hit carries that row's range.
    """
    import torch

    if rows is None:
        rows = [(i, None) for i in range(len(videos))]
    scores = query_embeddings @ video_embeddings.T  # [queries, rows]
    owned: dict[int, list[int]] = {}
    for row, (owner, _) in enumerate(rows):
        owned.setdefault(owner, []).append(row)
    owners = sorted(owned)
    best = [scores[:, owned[v]].max(dim=1) for v in owners]  # each video's best row, for every query
    video_scores = torch.stack([values for values, _ in best], dim=1)  # [queries, videos with rows]
    best_rows = torch.stack([torch.tensor(owned[v])[indices] for v, (_, indices) in zip(owners, best, strict=True)], 1)
    names = [videos[v].relative_to(folder).as_posix() for v in owners]
    results = []
    for q, query in enumerate(queries):
        row = video_scores[q]
        order = row.argsort(descending=True, stable=True).tolist()
        hits = []
        for r, i in enumerate(order[:top_k]):
            span = rows[int(best_rows[q, i])][1]
            start, end = span if span is not None else (None, None)
            hits.append(Hit(r + 1, names[i], videos[owners[i]], float(row[i]), start, end))
        expected_rank = None
        if query.expected is not None:
            matches = [r + 1 for r, i in enumerate(order) if query.expected in (names[i], videos[owners[i]].name)]
            expected_rank = matches[0] if matches else None
        results.append(QueryResult(query, hits, expected_rank))
    return results


def _moment_verdict(result: QueryResult) -> str:
    """The line that says whether a moment query's first hit is its moment."""
    query, first = result.query, result.hits[0]
    start, end = query.expected_span
    wanted = f"the expected moment {query.expected} [{seconds(start)}-{seconds(end)} s]"
    if result.moment_first:
        return f"  ✓ {wanted} comes first: {first.label}, IoU {result.moment_iou:.2f}"
    if not result.expected_first:
        return f"  ✗ {wanted} is not first: the first hit is another video"
    if first.span is None:
        return f"  ✗ {wanted} is not first: the video was indexed whole, without segments"
    return f"  ✗ {wanted} is not first: the first hit is {first.label}, IoU {result.moment_iou:.2f} < {MOMENT_IOU}"


def _counts(results: list[QueryResult], verdict) -> tuple[int, str]:
    """How many of `results` `verdict` holds for, and the counts per kind of query (`text 7/7, image 1/1`)."""
    by_kind: dict[str, list[bool]] = {}
    for result in results:
        by_kind.setdefault(result.query.kind, []).append(bool(verdict(result)))
    return sum(sum(oks) for oks in by_kind.values()), ", ".join(
        f"{kind} {sum(oks)}/{len(oks)}" for kind, oks in by_kind.items()
    )


def format_results(results: list[QueryResult]) -> str:
    """The terminal table: per query, its rank, score and video (with the best segment's range), ✓ beside the
    expected video, and the verdicts; then the summary lines.

    The summary counts, per kind of query, the queries that name a whole video whose video came first
    (`expected video first: ...`), and apart from them the queries that name a moment whose first hit is that
    moment (`moment queries: ...`).
    """
    lines = []
    for number, result in enumerate(results, 1):
        query = result.query
        lines += ["", f"[{number}/{len(results)}] {query.name}  ({query.describe()})"]
        width = max(len("video"), *(len(hit.label) for hit in result.hits))
        lines.append(f"  {'rank':>4}  {'score':>7}  video")
        for hit in result.hits:
            mark = "  ✓ expected" if is_expected(query, hit) else ""
            lines.append(f"  {hit.rank:>4}  {hit.score:>7.4f}  {hit.label:<{width}}{mark}".rstrip())
        if query.expected is not None:
            if result.expected_first:
                lines.append(f"  ✓ the expected video {query.expected} comes first")
            elif result.expected_rank is None:
                lines.append(f"  ✗ the expected video {query.expected} is not in the index")
            else:
                lines.append(f"  ✗ the expected video {query.expected} comes at rank {result.expected_rank}, not first")
        if query.expected_span is not None and result.hits:
            lines.append(_moment_verdict(result))
    videos = [result for result in results if result.query.expected is not None and result.query.expected_span is None]
    moments = [result for result in results if result.query.expected_span is not None]
    if videos or moments:
        lines.append("")
    if videos:
        first, kinds = _counts(videos, lambda result: result.expected_first)
        lines.append(f"expected video first: {first}/{len(videos)} queries ({kinds})")
    if moments:
        first, kinds = _counts(moments, lambda result: result.moment_first)
        lines.append(f"moment queries: {first}/{len(moments)} right moment first (IoU >= {MOMENT_IOU}; {kinds})")
    return "\n".join(lines)
