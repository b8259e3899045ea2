"""The README's GPU figures, written from the GPU check's results file (`gve_tools.gpu_check`): the figures of
`benchmarks/gpu-check.json` once a GPU run exists, else what the CPU rehearsal (`gpu-check-rehearsal.json`) ran,
labelled as a rehearsal, so that the section never shows a figure that was not measured on a GPU as one."""

import json
from pathlib import Path
from typing import Any

from gve_tools.card.results import ModelCardError
from gve_tools.repo import ROOT

GPU_CHECK_PATH = ROOT / "benchmarks" / "gpu-check.json"
REHEARSAL_PATH = ROOT / "benchmarks" / "gpu-check-rehearsal.json"


def load_check(path: Path) -> dict[str, Any] | None:
    """A GPU check's results file (None when there is none), with the parts the card reads checked."""
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ModelCardError(f"cannot read the GPU check's results {path}: {error}") from None
    missing = [key for key in ("device", "rehearsal", "command", "steps") if key not in result]
    if missing:
        raise ModelCardError(f"{path}: missing {', '.join(missing)}; run scripts/gpu_check.py again")
    return result


def steps_table(result: dict[str, Any]) -> str:
    """One row per step: its status, time and headline figure."""
    lines = ["| step | status | seconds | result |", "| --- | --- | ---: | --- |"]
    for name, step in result["steps"].items():
        lines.append(f"| {name} | {step['status']} | {step['seconds']:.0f} | {_headline(name, step)} |")
    return "\n".join(lines)


def _headline(name: str, step: dict[str, Any]) -> str:
    if step["status"] == "skipped":
        return step["reason"]
    if step["status"] == "failed":
        return step["error"].splitlines()[0][:160]
    results = step["results"]
    if name == "parity":
        cosines = results["cosine"]["bundled"]
        return f"bf16 against fp32, lowest cosine {min(cosines.values()):.6f} (bundled model, every input kind)"
    if name == "attention":
        return f"sdpa against flash-attention 2, lowest cosine {min(results['cosine'].values()):.6f}"
    if name == "benchmark":
        encode = results["results"]["b"]
        text = f"model.encode {encode['items_per_s']:.1f} items/s"
        return text + (f", model FLOP utilisation {encode['mfu']:.1%}" if "mfu" in encode else "")
    if name == "vllm":
        rows = [row for row in results["rows"] if row["dtype"] == "float32"]
        return f"vLLM against model.encode (fp32), lowest cosine {min(row['cosine'] for row in rows):.6f}"
    return ""


def gpu_context(path: Path = GPU_CHECK_PATH, rehearsal: Path = REHEARSAL_PATH) -> dict[str, Any]:
    """`gpu` for the template: `measured` (a GPU run exists), `device`, `command` and `table`; or the rehearsal's
    (`measured` false), or nothing at all (`table` None)."""
    result = load_check(path) or load_check(rehearsal)
    if result is None:
        return {"gpu": {"measured": False, "table": None}}
    measured = not result["rehearsal"]
    table = steps_table(result)
    return {"gpu": {"measured": measured, "device": result["device"], "command": result["command"], "table": table}}
