"""Search a FAISS index built by `embed_corpus.py --index` with a text, image, video or composed query.

The query is embedded with the index's own checkpoint and revision (from `index.json`), with the
query instruction (`configuration_gve.QUERY_INSTRUCTION` unless `--instruction` is given); the
corpus was embedded as documents. `--text`, `--image` and `--video` together make one composed query
(e.g. text + image). Prints the index's vector format, then the top `--k` ids with their scores: cosines for a
float32 index and for a re-scored int8 or binary one (`--rescore N` re-ranks the top N by the float vectors kept
beside the index; the index's default depth is in `index.json`; 0 is off), else the compact score. `--json`
prints a list of {"id", "score", "vectors"} (the format's label, e.g. "binary+rescore100").

    python scripts/search_index.py corpus-emb --text "a red square moving to the right" --k 5
    python scripts/search_index.py corpus-emb --image query.png --text "the same, but moving down"
    python scripts/search_index.py corpus-emb --video query.mp4 --json
    python scripts/search_index.py corpus-emb --text "a red square" --rescore 0    # a compact index, no re-scoring
"""

import argparse
import json
import sys
from pathlib import Path

from gve_tools.corpus.index import load_index, load_query_model, search, search_format
from gve_tools.models import ModelLoadError
from gve_tools.repo import query_instruction

# What a score is, by the vectors that gave it (a re-scored index's are float cosines).
SCORES = {
    "float32": "cosines",
    "int8": "the query's inner product with the int8 vectors",
    "binary": "1 - 2·hamming/D of the sign bits",
}


def main(argv: list[str] | None = None) -> int:
    default_instruction = query_instruction()
    parser = argparse.ArgumentParser(
        description="Search an embed_corpus.py index with a text, image, video or composed query (ids and scores)."
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
        results = search(args.folder, [query], model, args.k, args.instruction, loaded=loaded, rescore=args.rescore)[0]
    except (FileNotFoundError, ModelLoadError) as error:  # FileNotFoundError: the float vectors a re-scoring reads
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{"id": ident, "score": score, "vectors": fmt.label} for ident, score in results]))
    else:
        print(f"vectors: {fmt.label} (scores: {SCORES[fmt.kind if not fmt.rescore else 'float32']})")
        for rank, (ident, score) in enumerate(results, start=1):
            print(f"{rank:3d}  {score:.4f}  {ident}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
