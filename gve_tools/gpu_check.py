"""The one GPU check (`make gpu-check`): every figure a lent GPU gives, in one run and one results file.

GPU time comes in minutes, so nothing is set up there but what the check needs, and the check is rehearsed on a
CPU (`make gpu-check-rehearsal`, also run by the tests) so that it is known to work before a GPU is lent. Steps,
each timed and recorded even when it fails or is skipped:

* `parity`: bf16 against fp32 on every input kind (text, image, video, text+image, text+video), cosine per kind,
  on the bundled tiny GVE (which must reach 0.999) and on a tiny random checkpoint with non-degenerate weights
  (recorded: there stock transformers' own bf16 drifts further, 0.998 on an image on a CPU, and GVE's bf16
  equals stock bf16, tests/test_gpu_check.py);
* `attention`: sdpa against flash-attention 2 in bf16, when flash-attn is installed;
* `benchmark`: `scripts/benchmark.py --shapes 3b` (random weights at GVE-3B's shapes) with its model FLOP
  utilisation, on a small mixed corpus (on a CPU: the tiny model, a smaller corpus);
* `vllm`: `scripts/check_vllm_parity.py` when vLLM is importable (on a CPU: when `.venv-vllm` exists).

The results file (`--output`, JSON: `device`, `rehearsal`, `versions`, and each step's `status`, `seconds` and
`results`) is what the README's GPU section is written from (`gve_tools.card.gpu`).

    python scripts/gpu_check.py --device cuda --output benchmarks/gpu-check.json
    python scripts/gpu_check.py --device cpu --output benchmarks/gpu-check-rehearsal.json   # the rehearsal
"""

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gve_tools.repo import BUNDLED_MODEL, ROOT

PARITY_THRESHOLD = 0.999  # bf16 against fp32
BENCHMARK_CORPUS = {
    "cuda": ["--videos", "32", "--images", "16", "--texts", "16"],
    "cpu": ["--videos", "4", "--images", "2", "--texts", "2"],
}


def _inputs(folder: Path) -> dict[str, Any]:
    """The parity inputs by kind (text, image, video, text+image, text+video): `vllm_parity`'s."""
    from gve_tools.vllm_parity import parity_inputs

    return parity_inputs(folder)


def parity(device: str, folder: Path) -> dict[str, Any]:
    """bf16 against fp32, cosine per input kind, for each checkpoint."""
    from gve_tools.models import load_model
    from gve_tools.tiny import make_tiny_checkpoint

    checkpoints = {"bundled": str(BUNDLED_MODEL), "tiny-random": str(make_tiny_checkpoint(folder / "tiny"))}
    inputs = _inputs(folder)
    results = {}
    for name, checkpoint in checkpoints.items():
        embeddings = {}
        for dtype in ("float32", "bfloat16"):
            model = load_model(checkpoint, device=device, dtype=dtype)
            embeddings[dtype] = model.encode(list(inputs.values()), show_progress_bar=False).float().cpu()
        cosines = (embeddings["float32"] * embeddings["bfloat16"]).sum(dim=1).tolist()
        results[name] = dict(zip(inputs, cosines, strict=True))
    worst = min(results["bundled"].values())
    return {"cosine": results, "worst": worst, "passed": worst >= PARITY_THRESHOLD, "threshold": PARITY_THRESHOLD}


def attention(device: str, folder: Path) -> dict[str, Any]:
    """sdpa against flash-attention 2 (bf16), cosine per input kind; skipped without flash-attn."""
    if importlib.util.find_spec("flash_attn") is None:
        raise _Skip("flash-attn is not installed")
    if device != "cuda":
        raise _Skip("flash-attention runs on CUDA GPUs only")
    from gve_tools.models import load_model

    inputs = _inputs(folder)
    model = load_model(str(BUNDLED_MODEL), device=device, dtype="bfloat16")
    sdpa = model.encode(list(inputs.values()), show_progress_bar=False).float().cpu()
    model.set_attn_implementation("flash_attention_2")
    flash = model.encode(list(inputs.values()), show_progress_bar=False).float().cpu()
    return {"cosine": dict(zip(inputs, (sdpa * flash).sum(dim=1).tolist(), strict=True))}


def benchmark(device: str, folder: Path) -> dict[str, Any]:
    """The throughput benchmark: GVE-3B's shapes on a GPU, the tiny model in a rehearsal."""
    output = folder / "benchmark.json"
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--device", device, "--scale", "1"]
    command += ["--shapes", "3b"] if device == "cuda" else ["--model", "tiny"]
    command += BENCHMARK_CORPUS[device] + ["--corpus-dir", str(folder / "corpus"), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"benchmark.py exited with {done.returncode}:\n{done.stderr[-3000:]}")
    figures = json.loads(output.read_text())
    return {"command": " ".join(command[1:]), **figures}


def vllm(device: str, folder: Path) -> dict[str, Any]:
    """vLLM against `model.encode` (check_vllm_parity.py): vLLM in this environment on a GPU, `.venv-vllm` on a
    CPU."""
    from gve_tools.vllm_parity import DEFAULT_VLLM_PYTHON

    python = Path(sys.executable) if importlib.util.find_spec("vllm") else DEFAULT_VLLM_PYTHON
    if not python.exists():
        raise _Skip("vLLM is not installed (on a CPU: `make vllm-parity` builds .venv-vllm)")
    output = folder / "vllm.json"
    command = [sys.executable, str(ROOT / "scripts" / "check_vllm_parity.py"), "--device", device]
    command += ["--vllm-python", str(python), "--no-server", "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True)
    if not output.exists():
        raise RuntimeError(f"check_vllm_parity.py exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(output.read_text())


class _Skip(Exception):
    """A step that does not apply here (the reason is recorded)."""


STEPS: dict[str, Callable[[str, Path], dict[str, Any]]] = {
    "parity": parity,
    "attention": attention,
    "benchmark": benchmark,
    "vllm": vllm,
}


def run_check(device: str, steps: list[str], output: Path) -> dict[str, Any]:
    """Run `steps` on `device`, writing the results file after each step (a run cut short keeps what it did)."""
    import torch

    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.machine()})",
        "rehearsal": device != "cuda",
        "command": "python scripts/gpu_check.py " + " ".join(sys.argv[1:]),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "steps": {},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in steps:
            started = time.perf_counter()
            try:
                record = {"status": "ok", "results": STEPS[name](device, Path(scratch))}
            except _Skip as skip:
                record = {"status": "skipped", "reason": str(skip)}
            except Exception as error:  # recorded, and the next step still runs: GPU time is not spent twice
                failure = f"{type(error).__name__}: {error}"
                record = {"status": "failed", "error": failure, "trace": traceback.format_exc()[-3000:]}
            record["seconds"] = round(time.perf_counter() - started, 1)
            result["steps"][name] = record
            print(f"{name:<10} {record['status']:<8} {record['seconds']:>7.1f} s", flush=True)
            output.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: the rehearsal")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS), help="default: all")
    parser.add_argument("--output", type=Path, required=True, help="the results file (JSON)")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU here (--device cpu rehearses the check)")
    result = run_check(args.device, args.steps, args.output)
    return 1 if any(step["status"] == "failed" for step in result["steps"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
