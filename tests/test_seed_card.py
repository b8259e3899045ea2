"""The original GVE model card's usage, run as published against a tiny checkpoint.

Only two things differ from the card: the model path (no Hub here) and the device (`.to("cuda")`
becomes `.to(model.device)`, as this machine has no GPU). The card's snippet must give the same,
correct embedding as `model.encode`.
"""

import torch
import torch.nn.functional as F
from qwen_vl_utils import process_vision_info
from transformers import AutoModel, AutoProcessor


def test_seed_card_snippet_equals_encode(tiny_path, media):
    # 1. Loading model
    model_path = str(tiny_path)
    model = AutoModel.from_pretrained(
        model_path, trust_remote_code=True, device_map="auto", low_cpu_mem_usage=True, torch_dtype=torch.bfloat16
    )
    processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=True, use_fast=True)
    processor.tokenizer.padding_side = "left"

    # 2. Processing inputs
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {
                    "type": "video",
                    "video": str(media["video"]),
                    "max_pixels": 200 * 28 * 28,
                    "fps": 1.0,
                    "max_frames": 8,
                },
                {"type": "text", "text": "Describe this video."},
            ],
        },
    ]
    texts = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_inputs, video_inputs, video_kwargs = process_vision_info(messages, return_video_kwargs=True)
    inputs = processor(
        text=[texts],
        images=image_inputs,
        videos=video_inputs,
        padding=True,
        truncation=True,
        max_length=1200,
        return_tensors="pt",
        **video_kwargs,
    ).to(model.device)

    # 3. Embedding
    outputs = model(**inputs)
    embedding = F.normalize(outputs["last_hidden_state"][:, -1, :], p=2, dim=1)

    assert inputs["input_ids"][0, -1] == model.config.pooling_token_id
    expected = model.encode({"video": str(media["video"]), "text": "Describe this video."})
    assert model.dtype == torch.bfloat16
    assert F.cosine_similarity(embedding.float(), expected).item() >= 0.9999


def test_seed_card_style_with_video_metadata(model, processor, media):
    """The transformers 5.x form, `return_video_metadata=True`, gives the same inputs as `prepare`."""
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {
                    "type": "video",
                    "video": str(media["video_2"]),
                    "fps": 1.0,
                    "max_frames": 8,
                    "max_pixels": 200 * 28 * 28,
                },
                {"type": "text", "text": "a green square"},
            ],
        },
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
    inputs = processor(text=[text], images=images, videos=videos, padding=True, return_tensors="pt", **video_kwargs)
    expected = processor.prepare([{"video": str(media["video_2"]), "text": "a green square"}])
    for key in (
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
    ):
        torch.testing.assert_close(inputs[key], expected[key])
