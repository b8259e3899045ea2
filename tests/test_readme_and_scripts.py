"""The README's commands and snippets, and the scripts' command lines."""

import re
import subprocess
import sys

import pytest
import torch

from gve_tools.repo import ROOT

README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_the_setup_commands():
    body = README.split("\n---\n", 1)[1].strip().splitlines()
    assert body[0].startswith("# ")
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make system", "make demo", "make test"]
    assert "make system test" in (ROOT / ".ci" / "run").read_text()  # CI installs the system packages, then tests
    # the title and a one-line summary come before the commands, nothing else
    before = README.split("\n---\n", 1)[1].split("```bash", 1)[0]
    assert len([line for line in before.splitlines() if line.strip()]) == 2


PYTHON_BLOCKS = python_blocks(README)
RUNNABLE = [block for block in PYTHON_BLOCKS if "from vllm" not in block]  # vLLM needs a GPU


def test_readme_documents_every_entry_point():
    joined = "\n".join(PYTHON_BLOCKS)
    for entry_point in ("AutoModel.from_pretrained", "SentenceTransformer(", "EndpointHandler(", "LLM("):
        assert entry_point in joined, entry_point
    assert "vllm serve" in README and "--runner pooling" in README


@pytest.mark.parametrize("index", range(len(RUNNABLE)))
def test_readme_snippet_runs(index, tiny_path, media, http_root, monkeypatch):
    monkeypatch.setenv("GVE_ALLOW_PRIVATE_HOSTS", "true")  # the test's media server is on loopback
    snippet = RUNNABLE[index]
    replacements = {
        "Alibaba-NLP/GVE-7B": str(tiny_path),
        "clip.mp4": str(media["video"]),
        "photo.jpg": str(media["image"]),
        "https://example.com": http_root,
        'device_map="cuda"': 'device_map="cpu"',  # bitsandbytes runs its GPU configs on the CPU too
    }
    assert any(published in snippet for published in replacements)
    for published, local in replacements.items():
        snippet = snippet.replace(published, local)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    for name, shape in (("scores", (2, 3)), ("short", (1, 64)), ("small", (1, 64))):
        if name in scope:
            assert tuple(scope[name].shape) == shape, name
    if "quantization" in scope:  # the low-memory snippet: 4-bit language model, float vision tower, still GVE
        model = scope["model"]
        assert type(model.model.language_model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
        assert type(model.model.visual.blocks[0].mlp.down_proj) is torch.nn.Linear
        assert model.encode(["a red square", str(media["video"])]).shape == (2, 64)
    if "vectors" in scope:
        assert len(scope["vectors"]) == 2 and len(scope["vectors"][0]) == 64 and len(scope["similarities"]) == 2


def test_widget_example_is_answered_by_the_handler(tiny_path, model):
    from huggingface_hub import ModelCard

    from handler import EndpointHandler

    widget = ModelCard(README).data.widget
    assert widget and {"source_sentence", "sentences"} <= widget[0].keys()
    scores = EndpointHandler(str(tiny_path))({"inputs": widget[0]})
    source = model.encode([widget[0]["source_sentence"]])
    expected = (model.encode(widget[0]["sentences"]) @ source.T)[:, 0]
    torch.testing.assert_close(torch.tensor(scores), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("script", ["make_tiny_checkpoint.py", "video_search.py"])
@pytest.mark.slow
def test_scripts_explain_themselves(script):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout and len(result.stdout) > 200


def test_make_demo_runs_the_video_search():
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/video_search.py $(ARGS)" in recipe  # tests/video_search/ tests the script itself
    assert not (ROOT / "scripts" / "demo.py").exists()
