"""GVE's main job: index a folder of videos, answer text, image, video and composed queries with ranked results:
each video, and for a long one the moment (time range) that matches best.

With no arguments it runs offline on the bundled tiny GVE (trained on synthetic clips, in
bundled/gve-tiny-synthetic), over the bundled sample clips (bundled/samples/videos) and their sample
queries (bundled/samples/queries.json), each of which names the clip (or the moment of the long clip) it
should retrieve first. With `--model Alibaba-NLP/GVE-3B` (or a local checkpoint folder) the same command uses
a real GVE.

The index is every video file (by extension: .mp4, .mkv, .webm, ...) under --videos, searched
recursively (hidden files and folders are skipped) and sorted by relative path. A video longer than one
window (--window, default the checkpoint's max_frames / fps: 4 s for the bundled model) is indexed as
segments, consecutive windows --stride apart (default: the model's); --no-segments indexes every video
whole. Videos and segments are embedded as documents (the checkpoint's default instruction), queries with
the query instruction, and the results are ranked by cosine similarity: a video's score is its best
segment's, and each hit of a long video names that segment's time range (`long.mp4 [8.0-12.0 s]`).
Embeddings are cached under `<output>/cache`, keyed by the model (its folder's weights, config, remote code
and tokenizer, or its Hub id and commit), the dtype, the device, the segment settings and each file's path,
size and modification time, so a repeated run only embeds new or changed videos (the cache keeps the
entries of files since removed; delete the folder to start over).

Queries come from a JSON file, a list of objects with any of "text", "image" and "video" (a
composed query has "text" and a medium), an optional "name", an optional "instruction" (default:
the query instruction, "Find the video that matches the query.") and an optional "expected" (the
file name of the video that should come first), with "expected_start" and "expected_end" (seconds) when
the query names a moment of it: that query is right when its first hit is the video with a range of
temporal IoU >= 0.5 with the moment. Media paths are relative to the file. Queries given on the command
line (--text, --image, --video, --composed) replace the file's.

The results are printed as a table per query, then how many queries found their expected video first and
how many found their expected moment first, and written as a self-contained HTML page,
`<output>/results.html`, with a thumbnail strip of each retrieved video; for a moment, thumbnails from
within its range, its start and end, and a link and a player that play the video from its start.

    python scripts/video_search.py                                    # bundled model, samples and queries
    python scripts/video_search.py --videos ~/clips --text "a dog catching a frisbee" --top-k 3
    python scripts/video_search.py --videos ~/clips --composed "the same scene at night" photo.jpg
    python scripts/video_search.py --videos ~/films --text "the goal" --stride 2   # segments 2 s apart
    python scripts/video_search.py --videos ~/clips --no-segments    # whole videos only
    python scripts/video_search.py --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16 --videos ~/clips \\
        --queries my_queries.json
"""

import sys

from gve_tools.errors import GVEToolsError
from gve_tools.models import DTYPES
from gve_tools.repo import query_instruction
from gve_tools.text import docstring_parser
from gve_tools.video_search.job import BUNDLED_MODEL, BUNDLED_QUERIES, BUNDLED_VIDEOS, DEFAULT_OUTPUT, video_search
from gve_tools.video_search.queries import command_line_queries

EXIT_STATUS = "exit status: 0 done; 1 a missing or unusable input (the message says which); 2 bad arguments."


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = docstring_parser(__doc__, epilog=EXIT_STATUS)
    parser.add_argument(
        "--model", default=BUNDLED_MODEL, help=f"GVE checkpoint: local folder or Hub repo id (default: {BUNDLED_MODEL})"
    )
    parser.add_argument("--revision", help="Hub branch, tag or commit of --model (default: main)")
    parser.add_argument(
        "--videos",
        default=BUNDLED_VIDEOS,
        help=f"folder of videos to index, searched recursively (default: {BUNDLED_VIDEOS})",
    )
    parser.add_argument(
        "--queries",
        default=BUNDLED_QUERIES,
        help='JSON list of {"name", "text", "image", "video", "instruction", "expected", "expected_start", '
        f'"expected_end"}} objects, media paths relative to the file (default: {BUNDLED_QUERIES})',
    )
    parser.add_argument("--text", nargs="+", action="extend", default=[], metavar="TEXT", help="text queries")
    parser.add_argument("--image", nargs="+", action="extend", default=[], metavar="PATH", help="image queries")
    parser.add_argument("--video", nargs="+", action="extend", default=[], metavar="PATH", help="video queries")
    parser.add_argument(
        "--composed",
        nargs=2,
        action="append",
        default=[],
        metavar=("TEXT", "MEDIA"),
        help="a composed query: a text with an image or a video (repeatable)",
    )
    parser.add_argument(
        "--instruction", help=f"instruction of the command-line queries (default: {query_instruction()!r})"
    )
    parser.add_argument(
        "--no-segments",
        dest="segments",
        action="store_false",
        help="index every video whole, however long (default: a video longer than one window is indexed as "
        "segments, and its hits name their time range)",
    )
    parser.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="segment length, and the length past which a video is segmented (default: the checkpoint's "
        "max_frames / fps)",
    )
    parser.add_argument(
        "--stride", type=float, metavar="SECONDS", help="seconds between segment starts (default: the model's)"
    )
    parser.add_argument("--top-k", type=int, default=5, help="results shown per query (default: 5)")
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help=f"folder for results.html and the cache (default: {DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", *DTYPES),
        help="weights dtype (default auto: bfloat16 on cuda, else float32)",
    )
    args = parser.parse_args(argv)
    try:
        queries = command_line_queries(args.text, args.image, args.video, args.composed, args.instruction)
        video_search(
            model=args.model,
            videos=args.videos,
            queries=queries or args.queries,
            top_k=args.top_k,
            output=args.output,
            device=args.device,
            dtype=args.dtype,
            revision=args.revision,
            segments=args.segments,
            window=args.window,
            stride=args.stride,
        )
    except GVEToolsError as error:  # SearchError, ModelLoadError, IdentityError: what and why
        parser.exit(1, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
