"""What a vLLM pooling deployment needs: the embedding chat template and the parity script's requests.

vLLM runs in an environment of its own (`make vllm-parity`, benchmarks/VLLM.md). Here the parts that decide
vLLM's inputs are checked against GVE's own: the chat template vLLM renders, the offline requests the script
sends, processed the way vLLM processes them (the stock processor), and the one difference left, the position of
the text after a video.
"""

import subprocess
import sys

import numpy as np
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


def original_positions(input_ids: list[int], grids: list[tuple[int, int, int, float]], start: int) -> list[int]:
    """The temporal row of Qwen2.5-VL's rope positions by its original rule (transformers 4.x, and vLLM's
    `get_mrope_input_positions`): the text after a video starts one past the video's largest position, the
    temporal one included. `grids`: the video's (t, h, w, t_factor) with h and w after merging."""
    (t, h, w, factor) = grids[0]
    video = [int(index * factor) for index in range(t) for _ in range(h * w)]
    after = start + max(max(video), h - 1, w - 1) + 1
    return (
        list(range(start))
        + [start + value for value in video]
        + list(range(after, after + len(input_ids) - start - t * h * w))
    )


def test_after_a_long_video_transformers_5_places_the_text_earlier_than_vllm(model, processor, tmp_path):
    """The remaining gap between vLLM and GVE on videos of small frames (benchmarks/VLLM.md): transformers 5.x
    starts the text after a video at the video's start plus its larger spatial side, vLLM (as transformers 4.x did)
    one past its largest position, the temporal one included. They agree while a video is wider or higher than it
    lasts in rope steps, and GVE keeps transformers' positions (its reference)."""
    from gve_tools.media import write_video

    frames = [np.full((240, 320, 3), 8 * number, dtype=np.uint8) for number in range(32)]
    video = str(write_video(tmp_path / "clip.mp4", frames, fps=8))  # 4 s: 16 frames at 4 fps
    for max_pixels, agree in ((3136, False), (200 * 28 * 28, True)):
        inputs = processor.prepare([video], min_pixels=3136, max_pixels=max_pixels, fps=4.0, max_frames=16)
        positions, _ = model.model.get_rope_index(
            inputs["input_ids"],
            video_grid_thw=inputs["video_grid_thw"],
            second_per_grid_ts=inputs["second_per_grid_ts"],
            attention_mask=inputs["attention_mask"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
        )
        ids = inputs["input_ids"][0].tolist()
        start = ids.index(model.config.video_token_id)
        t, h, w = inputs["video_grid_thw"][0].tolist()
        factor = float(inputs["second_per_grid_ts"][0]) * model.config.vision_config.tokens_per_second
        expected = original_positions(ids, [(t, h // 2, w // 2, factor)], start)
        end = start + t * h * w // 4
        assert positions[0, 0, :end].tolist() == expected[:end]  # the same up to the video's last token
        assert (positions[0, 0, end:].tolist() == expected[end:]) == agree, (max_pixels, positions[0, 0, end:])
        if not agree:  # transformers 5.x: the video's start plus its larger merged side
            assert positions[0, 0, end] == start + max(h, w) // 2


@pytest.mark.slow
def test_parity_script_explains_itself_and_needs_the_vllm_environment(tmp_path):
    script = str(ROOT / "scripts" / "check_vllm_parity.py")
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--vllm-python" in help_text.stdout and "make vllm-parity" in help_text.stdout
    missing = tmp_path / "no-venv" / "bin" / "python"
    result = subprocess.run([sys.executable, script, "--vllm-python", str(missing)], capture_output=True, text=True)
    assert (
        result.returncode == 2
        and f"no vLLM environment at {missing}: build it with `make vllm-parity`" in result.stderr
    )
