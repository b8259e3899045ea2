#!/usr/bin/env python
"""Compare vLLM's GVE embeddings with `model.encode` on text, image, video and composed inputs (GPU machine).

vLLM runs the checkpoint as a stock Qwen2.5-VL with `runner="pooling"` (last-token pooling,
normalised). Each input is prepared once by `GVEProcessor.load` (the GVE prompt with its pooling
token, and the image/frames qwen-vl-utils decodes), then embedded by both engines; the cosine of
every pair is printed and written as JSON.

    python scripts/check_vllm_parity.py --model Alibaba-NLP/GVE-3B [--dtype bfloat16] [--output FILE.json]
    python scripts/check_vllm_parity.py --model tiny   # a tiny random checkpoint built on the spot
"""

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

from gve_tools.media import moving_square, write_image, write_video
from gve_tools.models import load_model


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


def check_parity(model_id: str, dtype: str = "bfloat16", threshold: float = 0.999) -> dict:
    """Embed every parity input with vLLM and with `model.encode`; return the cosines and the verdict."""
    from vllm import LLM

    model = load_model(model_id, device="cuda", dtype=dtype)
    processor = model.processor
    llm = LLM(
        model=model_id,
        runner="pooling",
        dtype=dtype,
        max_model_len=processor.embedding_config.max_length,
        limit_mm_per_prompt={"image": 1, "video": 1},
        trust_remote_code=True,
        enforce_eager=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        inputs = parity_inputs(Path(folder))
        requests = [processor.load(item).as_vllm_request() for item in inputs.values()]
        outputs = llm.embed(requests)
        expected = model.encode(list(inputs.values()))
    cosines = {}
    for name, output, reference in zip(inputs, outputs, expected, strict=True):
        vector = torch.nn.functional.normalize(torch.tensor(output.outputs.embedding, dtype=torch.float32), dim=0)
        cosines[name] = float(vector @ reference)
    import vllm

    return {
        "model": model_id,
        "dtype": dtype,
        "threshold": threshold,
        "cosine": cosines,
        "passed": all(value >= threshold for value in cosines.values()),
        "versions": {"vllm": vllm.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "device": torch.cuda.get_device_name(0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="GVE checkpoint folder or Hub repo id, or 'tiny'")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--threshold", type=float, default=0.999, help="lowest acceptable cosine (default 0.999)")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("vLLM needs a GPU: run this on a machine with CUDA")
    model_id = args.model
    if model_id == "tiny":
        from gve_tools.tiny import make_tiny_checkpoint

        model_id = str(make_tiny_checkpoint(Path(tempfile.mkdtemp()) / "gve-tiny"))
    results = check_parity(model_id, args.dtype, args.threshold)
    for name, value in results["cosine"].items():
        print(f"{name:<12} cosine {value:.6f}")
    print("PASSED" if results["passed"] else f"FAILED: some cosine below {args.threshold}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
