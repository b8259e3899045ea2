#!/usr/bin/env python
"""GVE end to end: load a checkpoint, embed a text, an image, a video and composed queries, print similarities.

With no `--model` it builds the tiny random checkpoint (scripts/make_tiny_checkpoint.py) and
synthetic media, so it runs offline on any machine; the similarities then show that the pipeline
works, not what the model understands. With `--model Alibaba-NLP/GVE-3B` (or a local folder) the
same run uses a real checkpoint.

    python scripts/demo.py [--model PATH_OR_REPO_ID] [--workdir build/demo] [--device cpu|cuda]
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from scripts.common import ROOT
from scripts.make_tiny_checkpoint import make_tiny_checkpoint
from scripts.synthetic_media import moving_square, write_image, write_video

QUERY_INSTRUCTION = "Find the video that matches the query."


def run_demo(model_id: str | None, workdir: Path, device: str = "cpu") -> torch.Tensor:
    """Embed the demo inputs with `model_id` (the tiny checkpoint when None) and print their similarities."""
    from transformers import AutoModel

    workdir.mkdir(parents=True, exist_ok=True)
    if model_id is None:
        model_id = str(make_tiny_checkpoint(workdir / "gve-tiny", seed=0))
        print(f"built the tiny random GVE checkpoint in {model_id} (pass --model for a real one)")
    video = write_video(workdir / "red_square_right.mp4", moving_square(24, colour="red", direction="right"))
    image = write_image(workdir / "blue_square.png", colour="blue")

    model = AutoModel.from_pretrained(model_id, trust_remote_code=True).to(device).eval()
    documents = {"video: red square moving right": str(video), "image: blue square": str(image)}
    queries = {
        "text: a red square moving to the right": "a red square moving to the right",
        "text: a blue square": "a blue square",
        "text+image: this square, moving right": {"text": "this square, moving right", "image": str(image)},
        "text+video: the same motion in blue": {"text": "the same motion in blue", "video": str(video)},
    }
    doc_embeddings = model.encode(list(documents.values()))
    query_embeddings = model.encode(list(queries.values()), instruction=QUERY_INSTRUCTION)
    scores = query_embeddings @ doc_embeddings.T

    width = max(map(len, queries))
    print(f"\ncosine similarity (queries x documents), {model_id}")
    print(" " * width + "".join(f"  {name[:34]:>34}" for name in documents))
    for name, row in zip(queries, scores, strict=True):
        print(f"{name:<{width}}" + "".join(f"  {value:>34.4f}" for value in row.tolist()))
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="GVE checkpoint: local folder or Hub repo id (default: a tiny random one)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo", help="where to write the demo files")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    args = parser.parse_args(argv)
    run_demo(args.model, args.workdir, args.device)


if __name__ == "__main__":
    main()
