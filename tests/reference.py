"""The reference every GVE entry point must match: stock transformers Qwen2.5-VL, driven by hand.

Written from GVE's published definition (FACTS.md), independently of the package's processor: the
stock chat template, `<|endoftext|>` appended after the generation prompt, left padding,
qwen-vl-utils for media with the model card's video settings, and the final-norm hidden state of
the last token, L2-normalised.
"""

import torch
import torch.nn.functional as F
from qwen_vl_utils import process_vision_info

DEFAULT_INSTRUCTION = "You are a helpful assistant."
VIDEO_ELEMENT = {"fps": 1.0, "max_frames": 8, "max_pixels": 200 * 28 * 28}
IMAGE_ELEMENT = {"max_pixels": 1280 * 28 * 28}


def conversation(item: dict, instruction: str = DEFAULT_INSTRUCTION, order=("video", "image", "text")) -> list:
    content = []
    for kind in order:
        if kind == "video" and "video" in item:
            time_range = {key: item[key] for key in ("video_start", "video_end") if key in item}
            content.append({"type": "video", "video": str(item["video"]), **VIDEO_ELEMENT, **time_range})
        elif kind == "image" and "image" in item:
            content.append({"type": "image", "image": str(item["image"]), **IMAGE_ELEMENT})
        elif kind == "text" and "text" in item:
            content.append({"type": "text", "text": item["text"]})
    return [{"role": "system", "content": instruction}, {"role": "user", "content": content}]


def stock_inputs(
    processor,
    items: list[dict],
    instruction: str = DEFAULT_INSTRUCTION,
    order=("video", "image", "text"),
    pooling_token: str = "<|endoftext|>",
    padding_side: str = "left",
):
    """Stock processor inputs for `items` (dicts with `text`/`image`/`video` paths)."""
    texts, images, videos, metadata = [], [], [], []
    for item in items:
        messages = conversation(item, instruction, order)
        texts.append(
            processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + pooling_token
        )
        item_images, item_videos, _ = process_vision_info(
            messages, return_video_kwargs=True, return_video_metadata=True
        )
        images += item_images or []
        for frames, meta in item_videos or []:
            videos.append(frames)
            metadata.append(meta)
    video_kwargs = {"video_metadata": metadata, "do_sample_frames": False} if videos else {}
    return processor(
        text=texts,
        images=images or None,
        videos=videos or None,
        padding=True,
        padding_side=padding_side,
        return_tensors="pt",
        **video_kwargs,
    )


@torch.no_grad()
def stock_embeddings(model, processor, items: list[dict], **kwargs) -> torch.Tensor:
    """GVE embeddings from the stock model: `hidden_states[-1][:, -1]`, normalised (as mteb reads them)."""
    outputs = model(**stock_inputs(processor, items, **kwargs), output_hidden_states=True)
    return F.normalize(outputs.hidden_states[-1][:, -1].float(), dim=-1)
