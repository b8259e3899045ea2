"""The README's commands and snippets, and the scripts' command lines."""

import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from scripts.common import ROOT
from scripts.demo import run_demo
from scripts.make_tiny_checkpoint import make_tiny_checkpoint

README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_the_two_setup_commands():
    body = README.split("\n---\n", 1)[1].strip().splitlines()
    assert body[0].startswith("# ")
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    # the title and a one-line summary come before the commands, nothing else
    before = README.split("\n---\n", 1)[1].split("```bash", 1)[0]
    assert len([line for line in before.splitlines() if line.strip()]) == 2


def test_readme_usage_snippet_runs(tiny_path, media):
    snippet = python_blocks(README)[0]
    for published, local in {
        "Alibaba-NLP/GVE-7B": str(tiny_path),
        "clip.mp4": str(media["video"]),
        "photo.jpg": str(media["image"]),
    }.items():
        assert published in snippet
        snippet = snippet.replace(published, local)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["scores"].shape == (2, 3)
    assert scope["documents"].dtype == torch.float32


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


def test_make_tiny_checkpoint_rejects_an_unknown_layout(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_checkpoint.py"), str(tmp_path), "--layout", "v4"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid choice: 'v4'" in result.stderr
    with pytest.raises(ValueError, match="unknown layout 'v4'"):
        make_tiny_checkpoint(tmp_path / "x", layout="v4")


@pytest.mark.parametrize("script", ["make_tiny_checkpoint.py", "demo.py"])
def test_scripts_explain_themselves(script):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout and len(result.stdout) > 200


def test_demo_embeds_and_prints_similarities(tiny_path, model, tmp_path, capsys):
    scores = run_demo(str(tiny_path), tmp_path)
    assert scores.shape == (4, 2)
    assert torch.all(scores.abs() <= 1.0001)
    out = capsys.readouterr().out
    assert "cosine similarity (queries x documents)" in out
    assert "video: red square moving right" in out and "text+video: the same motion in blue" in out
    video = model.encode([str(tmp_path / "red_square_right.mp4")])
    query = model.encode(
        [{"text": "the same motion in blue", "video": str(tmp_path / "red_square_right.mp4")}],
        instruction="Find the video that matches the query.",
    )
    torch.testing.assert_close((query @ video.T)[0, 0], scores[3, 0])
