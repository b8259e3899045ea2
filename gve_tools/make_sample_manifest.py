#!/usr/bin/env python
"""Write a synthetic corpus (videos, images, texts, composed items) and its manifest, for embed_corpus.

Videos are short mp4 clips of a coloured square moving across the picture, images are textured
stills, texts describe them; a quarter of the items with media also carry a caption (composed
inputs). Media paths in the manifest are relative to its folder. `--bad N` adds N items that cannot
be embedded (a missing file, an empty video, a one-frame video, in turn), to try `--on-error skip`.

    python scripts/make_sample_manifest.py build/sample --items 200
    python scripts/embed_corpus.py build/sample/manifest.jsonl --checkpoint build/gve-tiny --out build/sample-emb
"""

import argparse
import json
import random
import sys
from pathlib import Path

from gve_tools.synthetic_media import COLOURS, moving_square, write_image, write_video

DIRECTIONS = ("left", "right", "up", "down")


def make_sample_manifest(folder: str | Path, items: int = 200, bad: int = 0, seed: int = 0) -> Path:
    """Write `items` good items (40% videos, 30% images, 30% texts) and `bad` bad ones; returns the manifest path.

    Media files already in `folder` are reused, so a second call is quick.
    """
    rng = random.Random(seed)
    folder = Path(folder)
    (folder / "media").mkdir(parents=True, exist_ok=True)
    colours = sorted(COLOURS)
    rows = []
    for index in range(items):
        colour, direction = rng.choice(colours), rng.choice(DIRECTIONS)
        caption = f"a {colour} square moving {direction}"
        kind = ("video", "video", "video", "video", "image", "image", "image", "text", "text", "text")[index % 10]
        row: dict = {"id": f"{kind}-{index:05d}"}
        if kind == "video":
            name = f"media/video-{index:05d}.mp4"
            if not (folder / name).exists():
                frames = rng.choice((8, 16, 24))
                write_video(folder / name, moving_square(frames, 96, 64, colour, direction), fps=8)
            row["video"] = name
        elif kind == "image":
            name = f"media/image-{index:05d}.png"
            if not (folder / name).exists():
                write_image(folder / name, colour, seed=index)
            row["image"] = name
        else:
            row["text"] = caption + rng.choice(("", " on a dark background", " seen from far away"))
        if kind != "text" and rng.random() < 0.25:
            row["text"] = caption
        rows.append(row)
    for index in range(bad):
        kind = index % 3
        row = {"id": f"bad-{index:05d}"}
        if kind == 0:
            row["video"] = f"media/missing-{index:05d}.mp4"
        elif kind == 1:
            (folder / "media" / "empty.mp4").write_bytes(b"")
            row["video"] = "media/empty.mp4"
        else:
            if not (folder / "media" / "one-frame.mp4").exists():
                write_video(folder / "media" / "one-frame.mp4", moving_square(1), fps=8)
            row["video"] = "media/one-frame.mp4"
        rows.insert(rng.randrange(len(rows) + 1), row)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


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
