"""The `embed_corpus` command (`scripts/embed_corpus.py`, `gve-embed-corpus`): its arguments, then one call of
`embed_corpus` (and `build_index` with `--index`) on the running Ray, a Ray cluster, or a local Ray it starts.

    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb --index
    python scripts/embed_corpus.py manifest.jsonl --checkpoint Alibaba-NLP/GVE-3B --out corpus-emb --index \\
        --segment-seconds 8    # long videos as 8-second segments: search_index.py finds the moment
"""

import argparse
import sys
from pathlib import Path

from gve_tools.corpus.cluster import PlanError, ensure_ray
from gve_tools.corpus.index import DEFAULT_RESCORE, build_index, vector_format
from gve_tools.corpus.manifest import ManifestError
from gve_tools.corpus.pipeline import embed_corpus
from gve_tools.corpus.settings import DEFAULT_SHARD_SIZE, check_segments
from gve_tools.corpus.shards import OutputMismatch
from gve_tools.corpus.stages import ItemError
from gve_tools.models import DTYPES
from gve_tools.vectors import VECTOR_KINDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Embed a manifest of texts, images and videos with GVE on Ray Data (local mode, or a cluster "
        "with --address) into resumable Parquet shards; optionally build a FAISS index for scripts/search_index.py.",
        epilog="The manifest format, the output folder and the resume rules are in the module docstring "
        "(python -c 'import gve_tools.corpus as m; help(m)').",
    )
    parser.add_argument("manifest", type=Path, help="JSONL or Parquet manifest: id, and any of text, image, video")
    parser.add_argument("--checkpoint", required=True, help="GVE checkpoint: local folder or Hub repo id")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit); the commit is recorded")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created; re-run into it to resume)")
    parser.add_argument("--address", help="Ray cluster to attach to (e.g. auto, ray://host:10001); default: local Ray")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all); ignored with --address")
    parser.add_argument("--concurrency", type=int, default=1, help="model actors (default 1)")
    parser.add_argument(
        "--num-gpus", type=float, default=0.0, help="GPUs per model actor, e.g. 1, or 0.5 for two a GPU"
    )
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs reserved per model actor (default 1)")
    parser.add_argument("--device", default="cpu", help="device of the model in each actor: cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES, help="model dtype (bfloat16 on GPUs)")
    parser.add_argument("--float16", action="store_true", help="store embeddings as float16 (default float32)")
    parser.add_argument("--batch-size", type=int, default=16, help="most items per forward pass (default 16)")
    parser.add_argument(
        "--max-batch-tokens", type=int, default=16384, help="most tokens per forward pass, padding included"
    )
    parser.add_argument(
        "--preprocess",
        default="tasks",
        choices=("tasks", "actor"),
        help="where items are decoded: Ray CPU tasks (default) or encode's threads inside each model actor",
    )
    parser.add_argument("--num-workers", type=int, help="decoding threads per actor with --preprocess actor")
    parser.add_argument("--instruction", help="system instruction for every row (default: the checkpoint's)")
    parser.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="embed each video row longer than S seconds as segments of S seconds (model.encode_segments), one "
        "vector each, with its start and end in the shards and the index, so that a search finds the moment. "
        "A row with text or an image beside its video, or with its own video_start/video_end (that span stays "
        "one vector), and shorter videos, images and texts are embedded whole, as without this option",
    )
    parser.add_argument(
        "--segment-stride",
        type=float,
        metavar="T",
        help="with --segment-seconds: seconds from one segment's start to the next (at most S; less overlaps "
        "them; default: the model's, encode_segments' stride)",
    )
    parser.add_argument("--on-error", default="raise", choices=("raise", "skip"), help="bad items: stop, or list them")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="manifest rows per output shard")
    parser.add_argument("--max-shards", type=int, help="stop after this many new shards (re-run to continue)")
    parser.add_argument("--index", action="store_true", help="build a FAISS index over all shards at the end")
    parser.add_argument("--index-kind", default="auto", choices=("auto", "flat", "ivf"), help="exact or IVF (auto)")
    parser.add_argument(
        "--vectors",
        default="float32",
        choices=VECTOR_KINDS,
        help="what the index stores: float32 (default), int8 (FAISS's 8-bit scalar quantizer, 4x smaller) or "
        "binary (sign bits, 32x smaller); int8 and binary keep the float vectors beside the index for --rescore",
    )
    parser.add_argument(
        "--rescore",
        type=int,
        metavar="N",
        help=f"int8 or binary: searches re-rank their top N by the float vectors (default {DEFAULT_RESCORE}, "
        "recorded in index.json; search_index.py --rescore overrides it; 0: off)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:  # before the run: a bad format would only show once every shard is embedded
        vectors = vector_format(args.vectors, args.rescore)
    except ValueError as error:
        parser.error(f"--vectors/--rescore: {error}")
    try:
        check_segments(args.segment_seconds, args.segment_stride)
    except ValueError as error:
        parser.error(f"--segment-seconds/--segment-stride: {error}")

    started_ray = ensure_ray(args.address, args.num_cpus)
    try:
        summary = embed_corpus(
            args.manifest,
            args.out,
            args.checkpoint,
            revision=args.revision,
            device=args.device,
            dtype=args.dtype,
            float16=args.float16,
            instruction=args.instruction,
            on_error=args.on_error,
            concurrency=args.concurrency,
            num_gpus=args.num_gpus,
            actor_cpus=args.actor_cpus,
            batch_size=args.batch_size,
            max_batch_tokens=args.max_batch_tokens,
            num_workers=args.num_workers,
            preprocess_mode=args.preprocess,
            shard_size=args.shard_size,
            max_shards=args.max_shards,
            show_progress_bar=not args.no_progress,
            segment_seconds=args.segment_seconds,
            segment_stride=args.segment_stride,
        )
        if args.index and not summary.shards_left:
            summary.index = build_index(args.out, kind=args.index_kind, vectors=vectors)
    except (ManifestError, OutputMismatch, PlanError, ItemError) as error:  # DamagedShard is an OutputMismatch
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
