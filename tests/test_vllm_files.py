"""What a vLLM pooling deployment needs: the embedding chat template and the parity script's requests.

vLLM itself needs a GPU; `scripts/check_vllm_parity.py` runs the comparison there. Here the parts
that decide vLLM's inputs are checked against GVE's own: the chat template vLLM renders, and the
offline requests the script sends, processed the way vLLM processes them (the stock processor).
"""

import subprocess
import sys

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from gve_tools.repo import EMBEDDING_CHAT_TEMPLATE_FILE, ROOT
from gve_tools.vllm_parity import parity_inputs

TEMPLATE = (ROOT / EMBEDDING_CHAT_TEMPLATE_FILE).read_text()


def test_template_file_is_the_processors_template(processor, tiny_path):
    assert TEMPLATE == processor.embedding_chat_template, (
        "regenerate it: scripts.common.write_embedding_chat_template(ROOT)"
    )
    assert (tiny_path / EMBEDDING_CHAT_TEMPLATE_FILE).read_text() == TEMPLATE
    assert processor.chat_template["embedding"] == TEMPLATE  # loaded by name with the processor


def openai_message(item: dict) -> list:
    """An OpenAI-style chat request as vLLM's embeddings endpoint receives it: text first, media by URL."""
    parts = [{"type": "text", "text": item["text"]}] if "text" in item else []
    if "image" in item:
        parts.append({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})
    if "video" in item:
        parts.append({"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}})
    return [{"role": "user", "content": parts}]


@pytest.mark.parametrize("generation_prompt", [False, True])
@pytest.mark.parametrize(
    "item",
    [
        {"text": "a red square"},
        {"text": "this square, moving left", "image": True},
        {"text": "the same motion", "video": True},
        {"text": "all three", "image": True, "video": True},
        {"image": True},
    ],
)
def test_template_renders_gve_prompts_from_chat_requests(processor, item, generation_prompt):
    frames = [Image.new("RGB", (56, 56), "red")] * 2
    ours = {
        key: (Image.new("RGB", (56, 56)) if key == "image" else frames) if value is True else value
        for key, value in item.items()
    }
    rendered = processor.tokenizer.apply_chat_template(
        openai_message(item), chat_template=TEMPLATE, tokenize=False, add_generation_prompt=generation_prompt
    )
    assert rendered == processor.load(ours).prompt
    assert rendered.endswith("<|im_start|>assistant\n" + processor.pooling_token)


def test_template_keeps_a_given_system_instruction(processor):
    messages = [
        {"role": "system", "content": "Find the clip."},
        {"role": "user", "content": [{"type": "text", "text": "a dog"}]},
    ]
    rendered = processor.tokenizer.apply_chat_template(messages, chat_template=TEMPLATE, tokenize=False)
    assert rendered == processor.load("a dog", "Find the clip.").prompt
    text_only = [{"role": "user", "content": "a dog"}]
    assert processor.tokenizer.apply_chat_template(text_only, chat_template=TEMPLATE, tokenize=False) == (
        processor.load("a dog").prompt
    )


def test_offline_requests_carry_exactly_gve_inputs(processor, tiny_path, tmp_path):
    """Each request, processed as vLLM does it (stock processor), gives `prepare`'s model inputs."""
    stock = AutoProcessor.from_pretrained(tiny_path)
    for name, item in parity_inputs(tmp_path).items():
        request = processor.load(item).as_vllm_request()
        data = request.get("multi_modal_data", {})
        kwargs = {}
        if "video" in data:
            frames, metadata = data["video"]
            kwargs = {"videos": [torch.from_numpy(frames).permute(0, 3, 1, 2)], "video_metadata": [metadata]}
        kwargs.update(request.get("mm_processor_kwargs", {}))  # do_resize=False, as vLLM passes it on
        inputs = stock(
            text=[request["prompt"]], images=[data["image"]] if "image" in data else None, return_tensors="pt", **kwargs
        )
        expected = processor.prepare([item])
        assert inputs.keys() == expected.keys(), name
        for key in expected:
            torch.testing.assert_close(inputs[key], expected[key], msg=f"{name}: {key}")


@pytest.mark.slow
def test_parity_script_explains_itself_and_refuses_without_a_gpu():
    script = str(ROOT / "scripts" / "check_vllm_parity.py")
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--model" in help_text.stdout and "--threshold" in help_text.stdout
    if not torch.cuda.is_available():
        result = subprocess.run([sys.executable, script, "--model", "tiny"], capture_output=True, text=True)
        assert result.returncode == 2 and "vLLM needs a GPU" in result.stderr
