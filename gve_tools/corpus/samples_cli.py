"""Write a synthetic corpus (videos, images, texts, composed items) and its manifest, for embed_corpus.

What it writes is in `gve_tools.corpus.samples`' docstring.

    python scripts/make_sample_manifest.py build/sample --items 200
    python scripts/embed_corpus.py build/sample/manifest.jsonl --checkpoint build/gve-tiny --out build/sample-emb
"""

import argparse
import sys
from pathlib import Path

from gve_tools.corpus.samples import make_sample_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic mixed corpus and its JSONL manifest.")
    parser.add_argument("folder", type=Path, help="where to write media/ and manifest.jsonl")
    parser.add_argument("--items", type=int, default=200, help="good items (default 200)")
    parser.add_argument("--bad", type=int, default=0, help="bad items to add (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    print(make_sample_manifest(args.folder, args.items, args.bad, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
