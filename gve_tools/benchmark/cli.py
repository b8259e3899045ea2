"""Throughput benchmark: three ways of embedding one mixed corpus with one checkpoint, and the decode ceiling.

(a) the original model card's loop, one input at a time, decoding in the main thread;
(b) `model.encode` (threaded decoding ahead of the model, length-sorted token-budget batches);
(c) sentence-transformers `encode`.

The corpus is generated: mp4 videos of mixed lengths and sizes, images and texts. For each path the
benchmark reports items/s and the ratio to (a), the time split into decode (qwen-vl-utils),
preprocess (template, tokenizer, image/video processor) and forward, the padding waste, and the
peak RSS (and peak GPU memory on a GPU). The decode-bound ceiling is items/s when only reading and
decoding the inputs (`processor.load`), on all cores; (b) is reported as a fraction of it. A last
run takes encode's stages one after another on one thread, which gives each stage's own cost and
so the most any pipeline could reach with them perfectly overlapped on this machine's cores. Each
path runs in its own process, so that its peak RSS is its own; (b) also runs on 10x the corpus
(streamed from a generator) to show that memory stays flat.

    python scripts/benchmark.py                                  # tiny random checkpoint (GVE's settings), CPU
    python scripts/benchmark.py --model bundled/gve-tiny-synthetic   # the trained tiny GVE and its settings
    python scripts/benchmark.py --device cuda --shapes 3b        # random weights at GVE-3B's shapes, bf16
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gve_tools.benchmark.corpus import make_corpus
from gve_tools.benchmark.report import report
from gve_tools.benchmark.throughput import PATHS, SHAPES, in_subprocess, run_path
from gve_tools.repo import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="GVE checkpoint folder or repo id; 'tiny' builds the tiny one")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--shapes", choices=sorted(SHAPES), help="random weights at GVE-3B/7B shapes (bf16, cuda)")
    # 256 inputs by default: eight of encode's windows, so that filling the pipeline at the start and
    # draining it at the end (about a window each) weigh as little as they do on a real corpus
    parser.add_argument("--videos", type=int, default=128, help="videos in the corpus (default 128)")
    parser.add_argument("--images", type=int, default=64, help="images in the corpus (default 64)")
    parser.add_argument("--texts", type=int, default=64, help="texts in the corpus (default 64)")
    parser.add_argument("--scale", type=int, default=10, help="corpus multiple for the memory check (default 10)")
    parser.add_argument(
        "--corpus-dir",
        type=Path,
        default=ROOT / "build" / "benchmark-corpus",
        help="where the corpus is written (reused)",
    )
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--run", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.set_defaults(model_name=None)  # how the report names the model, when not by its path
    args = parser.parse_args(argv)
    if args.shapes and args.device != "cuda":
        parser.error("--shapes runs random weights at full size: use it with --device cuda")
    if args.run:  # a child process: one path, figures as JSON on the last line
        corpus = json.loads(args.corpus_file.read_text())
        print(json.dumps(run_path(args.run, args.model, corpus, args.repeat, args.device, args.shapes)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.model == "tiny":
            from gve_tools.tiny import make_tiny_checkpoint

            args.model = str(make_tiny_checkpoint(folder / "gve-tiny"))
            args.model_name = "tiny random checkpoint (scripts/make_tiny_checkpoint.py)"
        corpus = make_corpus(args.corpus_dir, args.videos, args.images, args.texts)
        corpus_file = folder / "corpus.json"
        corpus_file.write_text(json.dumps(corpus))
        results = {path: in_subprocess(path, args, corpus_file, 1) for path in PATHS}
        scale = {1: results["b"], args.scale: in_subprocess("b", args, corpus_file, args.scale)}
        text = report(results, scale, args)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"results": results, "scale": scale, "report": text}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
