"""Search a FAISS index built by `embed_corpus.py --index` with a text, image, video or composed query.

The query is embedded with the index's own checkpoint and revision (from `index.json`), with the
query instruction (`configuration_gve.QUERY_INSTRUCTION` unless `--instruction` is given); the
corpus was embedded as documents. `--text`, `--image` and `--video` together make one composed query
(e.g. text + image). Prints the index's vector format, then the top `--k` hits: rank, score, id and the time range
of the vector that matched (`12.0-16.0 s` for a segment of a video embedded with `--segment-seconds`, or the
row's own `video_start`/`video_end`, `60.0 s-end` when it has no end; nothing for an item embedded whole). Scores
are cosines for a float32 index and for a re-scored int8 or binary one (`--rescore N` re-ranks the top N by the
float vectors kept beside the index; the index's default depth is in `index.json`; 0 is off), else the compact
score. Several segments of one video can rank high; `--by-video` ranks ids instead, each video scored by its best
segment (whose range is printed), and returns `--k` distinct ids, searching deeper as needed. `--json` prints a
list of {"id", "score", "start", "end", "vectors"} (start and end in seconds, null for a whole item; vectors: the
format's label, e.g. "binary+rescore100").

    python scripts/search_index.py corpus-emb --text "a red square moving to the right" --k 5
    python scripts/search_index.py corpus-emb --text "the goal" --by-video    # each video's best moment
    python scripts/search_index.py corpus-emb --image query.png --text "the same, but moving down"
    python scripts/search_index.py corpus-emb --video query.mp4 --json
    python scripts/search_index.py corpus-emb --text "a red square" --rescore 0    # a compact index, no re-scoring
"""

import argparse
import json
import sys
from pathlib import Path

from gve_tools.corpus.index import Hit, load_index, load_query_model, search, search_format
from gve_tools.models import ModelLoadError
from gve_tools.repo import query_instruction
from gve_tools.text import seconds

# What a score is, by the vectors that gave it (a re-scored index's are float cosines).
SCORES = {
    "float32": "cosines",
    "int8": "the query's inner product with the int8 vectors",
    "binary": "1 - 2·hamming/D of the sign bits",
}


def main(argv: list[str] | None = None) -> int:
    default_instruction = query_instruction()
    parser = argparse.ArgumentParser(
        description="Search an embed_corpus.py index with a text, image, video or composed query (ids, scores, "
        "and the time range of each matching segment)."
    )
    parser.add_argument("folder", type=Path, help="output folder of embed_corpus.py --index")
    parser.add_argument("--text", help="query text")
    parser.add_argument("--image", help="query image: path or URL")
    parser.add_argument("--video", help="query video: path or URL")
    parser.add_argument("--k", type=int, default=10, help="results to return (default 10)")
    parser.add_argument(
        "--instruction", default=default_instruction, help=f"query instruction ({default_instruction!r})"
    )
    parser.add_argument("--device", default="cpu", help="device for the query model (default cpu)")
    parser.add_argument("--dtype", default="float32", help="dtype for the query model (default float32)")
    parser.add_argument(
        "--rescore",
        type=int,
        metavar="N",
        help="int8 or binary index: re-rank the top N by the float vectors (default: the index's; 0: off)",
    )
    parser.add_argument(
        "--by-video",
        action="store_true",
        help="rank ids, not segments: each video scored by its best segment (its range printed); k distinct ids",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    query = {key: getattr(args, key) for key in ("text", "image", "video") if getattr(args, key)}
    if not query:
        parser.error("give a query: --text, --image and/or --video")
    try:
        loaded = load_index(args.folder)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        fmt = search_format(loaded[2], args.rescore)
    except ValueError as error:  # rescore with a float32 index, or below 0
        parser.error(f"--rescore: {error}")
    try:
        model = load_query_model(loaded[2], args.device, args.dtype)
        results = search(
            args.folder,
            [query],
            model,
            args.k,
            args.instruction,
            loaded=loaded,
            rescore=args.rescore,
            by_video=args.by_video,
        )[0]
    except (FileNotFoundError, ModelLoadError) as error:  # FileNotFoundError: the float vectors a re-scoring reads
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{**hit._asdict(), "vectors": fmt.label} for hit in results]))
    else:
        grouped = "; by video: each id's best segment" if args.by_video else ""
        print(f"vectors: {fmt.label} (scores: {SCORES[fmt.kind if not fmt.rescore else 'float32']}){grouped}")
        for rank, hit in enumerate(results, start=1):
            print(f"{rank:3d}  {hit.score:.4f}  {hit.id}" + (f"  {time_range(hit)}" if hit.start is not None else ""))
    return 0


def time_range(hit: Hit) -> str:
    """A hit's time range as printed: `12.0-16.0 s`, or `60.0 s-end` for a range that runs to the video's end."""
    if hit.end is None:
        return f"{seconds(hit.start)} s-end"
    return f"{seconds(hit.start)}-{seconds(hit.end)} s"


if __name__ == "__main__":
    sys.exit(main())
