"""Running code against a locally filled Hugging Face Hub cache, as a user would with no network."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_offline(script: str, hub_cache: Path, workdir: Path):
    """Run `script` in a fresh Python with only the Hub cache (HF_HUB_OFFLINE=1); return its last line as JSON."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(hub_cache),
        "HF_MODULES_CACHE": str(workdir / "modules"),
        "PYTHONPATH": "",
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=workdir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
