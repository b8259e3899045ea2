"""The results of a video search: the ranking of the indexed videos for each query, and the terminal tables."""

from dataclasses import dataclass
from pathlib import Path

from gve_tools.video_search.queries import Query


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


def is_expected(query: Query, hit: Hit) -> bool:
    """Whether `hit` is the video `query` names as expected (by its relative path or its file name)."""
    return query.expected in (hit.video, hit.path.name)


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
            mark = "  ✓ expected" if is_expected(query, hit) else ""
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
