#!/usr/bin/env python
"""Search a FAISS index built by `embed_corpus.py --index` with a text, image, video or composed query.

The query is embedded with the index's own checkpoint and revision (from `index.json`), with the
query instruction (`configuration_gve.QUERY_INSTRUCTION` unless `--instruction` is given); the
corpus was embedded as documents. `--text`, `--image` and `--video` together make one composed query
(e.g. text + image). Prints the top `--k` ids with their cosine scores.

    python scripts/search_index.py corpus-emb --text "a red square moving to the right" --k 5
    python scripts/search_index.py corpus-emb --image query.png --text "the same, but moving down"
    python scripts/search_index.py corpus-emb --video query.mp4 --json
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gve_tools.repo import query_instruction

QUERY_INSTRUCTION = query_instruction()


def load_index(folder: str | Path) -> tuple[Any, list[str], dict[str, Any]]:
    """The FAISS index of an embed_corpus output folder, its ids (in index order) and its description."""
    import faiss

    folder = Path(folder)
    if not (folder / "index.faiss").is_file():
        raise FileNotFoundError(f"{folder} has no index.faiss; run embed_corpus.py with --index first")
    description = json.loads((folder / "index.json").read_text())
    index = faiss.read_index(str(folder / "index.faiss"))
    if "nprobe" in description:
        index.nprobe = description["nprobe"]
    return index, description.pop("ids"), description


def load_query_model(description: dict[str, Any], device: str = "cpu", dtype: str = "float32"):
    """The model the index was built with (same checkpoint and revision)."""
    import torch
    from transformers import AutoModel

    settings = description["settings"]
    model = AutoModel.from_pretrained(
        settings["checkpoint"], trust_remote_code=True, revision=settings["revision"], dtype=getattr(torch, dtype)
    )
    return model.to(device).eval()


def search(
    folder: str | Path,
    queries: list[Any],
    model=None,
    k: int = 10,
    instruction: str | None = QUERY_INSTRUCTION,
    loaded: tuple | None = None,
) -> list[list[tuple[str, float]]]:
    """Top-k `(id, cosine)` for each query (a text, or a dict with any of `text`, `image`, `video`).

    `model` defaults to the index's checkpoint; `loaded` is `load_index(folder)`, to reuse it.
    """
    index, ids, description = loaded or load_index(folder)
    model = model or load_query_model(description)
    vectors = model.encode(queries, instruction=instruction, show_progress_bar=False).numpy().astype(np.float32)
    if vectors.shape[1] != index.d:
        raise ValueError(f"the model embeds in {vectors.shape[1]} dimensions, the index has {index.d}")
    scores, positions = index.search(np.ascontiguousarray(vectors), min(k, len(ids)))
    results = []
    for row_positions, row_scores in zip(positions, scores, strict=True):
        hits = zip(row_positions, row_scores, strict=True)
        results.append([(ids[position], float(score)) for position, score in hits if position >= 0])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Search an embed_corpus.py index with a text, image, video or composed query (ids and scores)."
    )
    parser.add_argument("folder", type=Path, help="output folder of embed_corpus.py --index")
    parser.add_argument("--text", help="query text")
    parser.add_argument("--image", help="query image: path or URL")
    parser.add_argument("--video", help="query video: path or URL")
    parser.add_argument("--k", type=int, default=10, help="results to return (default 10)")
    parser.add_argument("--instruction", default=QUERY_INSTRUCTION, help=f"query instruction ({QUERY_INSTRUCTION!r})")
    parser.add_argument("--device", default="cpu", help="device for the query model (default cpu)")
    parser.add_argument("--dtype", default="float32", help="dtype for the query model (default float32)")
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
    model = load_query_model(loaded[2], args.device, args.dtype)
    results = search(args.folder, [query], model, args.k, args.instruction, loaded=loaded)[0]
    if args.json:
        print(json.dumps([{"id": ident, "score": score} for ident, score in results]))
    else:
        for rank, (ident, score) in enumerate(results, start=1):
            print(f"{rank:3d}  {score:.4f}  {ident}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
