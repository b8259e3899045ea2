"""The tiny checkpoint maker (gve_tools.tiny, `python scripts/make_tiny_checkpoint.py`) that the tests build on."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from gve_tools.repo import ROOT
from gve_tools.tiny import make_tiny_checkpoint


@pytest.mark.slow
def test_make_tiny_checkpoint_cli_is_reproducible(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "make_tiny_checkpoint.py"),
                str(tmp_path / name),
                "--seed",
                str(seed),
            ],
            check=True,
            capture_output=True,
        )
    a, b, c = (load_file(tmp_path / name / "model.safetensors") for name in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)
    for name in ("config.json", "processor_config.json", "tokenizer.json", "chat_template.jinja", "modeling_gve.py"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.slow
def test_make_tiny_checkpoint_rejects_an_unknown_layout(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_checkpoint.py"), str(tmp_path), "--layout", "v4"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid choice: 'v4'" in result.stderr
    with pytest.raises(ValueError, match="unknown layout 'v4'"):
        make_tiny_checkpoint(tmp_path / "x", layout="v4")
