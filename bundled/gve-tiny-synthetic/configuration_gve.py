# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""GVE configuration: a Qwen2.5-VL config plus the embedding settings.

This file is the single home of GVE's embedding rules. The model, the processor, the
sentence-transformers module, the endpoint handler and the scripts all read them from here
(through `GVEConfig` or the module-level defaults) instead of re-stating them.
"""

from huggingface_hub.dataclasses import strict
from transformers import Qwen2_5_VLConfig

# Qwen2.5-VL's image/video resolution unit: a 14-pixel patch merged 2x2.
PIXELS_PER_TOKEN = 28 * 28

DEFAULT_INSTRUCTION = "You are a helpful assistant."
# What `encode_query` uses in the sentence-transformers files; documents keep DEFAULT_INSTRUCTION.
# Tasks with their own instruction (as in mteb) should pass it instead.
QUERY_INSTRUCTION = "Find the video that matches the query."
POOLING_TOKEN_ID = 151643  # <|endoftext|> in the Qwen vocabulary

# The `from_pretrained` arguments that locate files in a repo; the model passes them on to load its
# processor from the same repo and revision, and the processor to load this config.
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


@strict
class GVEConfig(Qwen2_5_VLConfig):
    r"""
    Configuration of a GVE embedding model.

    It is a [`Qwen2_5_VLConfig`] (same `model_type`, so stock tools such as vLLM and mteb read the
    checkpoint as a plain Qwen2.5-VL) with the settings that define a GVE embedding.

    The embedding of an input is the final-norm hidden state at a pooling token appended after the
    chat template's generation prompt, L2-normalised:

        <|im_start|>system\n{instruction}<|im_end|>\n
        <|im_start|>user\n{video}{image}{text}<|im_end|>\n
        <|im_start|>assistant\n<|endoftext|>

    pooling_token_id (`int`, defaults to 151643):
        Id of the token the embedding is read at (`<|endoftext|>` in the Qwen vocabulary).
    default_instruction (`str`, defaults to `"You are a helpful assistant."`):
        System instruction used when the caller gives none (documents, and queries by default).
    max_length (`int`, defaults to 4096):
        Maximum prompt length in tokens. Longer text is cut (never the template's tail with the
        pooling token); inputs whose vision tokens alone exceed it are refused.
    video_fps (`float`, defaults to 1.0):
        Frames sampled per second of video.
    video_max_frames (`int`, defaults to 8):
        Most frames sampled from one video.
    video_min_pixels (`int`, *optional*):
        Least pixels per video frame after resizing (qwen-vl-utils' default, 128·28·28, if unset).
    video_max_pixels (`int`, defaults to 200·28·28):
        Most pixels per video frame after resizing.
    video_total_pixels (`int`, *optional*):
        Pixel budget of a whole video, shared by its frames (qwen-vl-utils' default if unset).
    image_min_pixels (`int`, *optional*):
        Least pixels of an image after resizing (qwen-vl-utils' default, 4·28·28, if unset).
    image_max_pixels (`int`, defaults to 1280·28·28):
        Most pixels of an image after resizing (the Qwen2-VL image processor's own default).
    """

    pooling_token_id: int = POOLING_TOKEN_ID
    default_instruction: str = DEFAULT_INSTRUCTION
    max_length: int = 4096
    video_fps: float = 1.0
    video_max_frames: int = 8
    video_min_pixels: int | None = None
    video_max_pixels: int | None = 200 * PIXELS_PER_TOKEN
    video_total_pixels: int | None = None
    image_min_pixels: int | None = None
    image_max_pixels: int | None = 1280 * PIXELS_PER_TOKEN

    def video_options(self) -> dict:
        """The default video controls, as qwen-vl-utils names them (unset ones left out)."""
        options = {
            "fps": self.video_fps,
            "max_frames": self.video_max_frames,
            "min_pixels": self.video_min_pixels,
            "max_pixels": self.video_max_pixels,
            "total_pixels": self.video_total_pixels,
        }
        return {key: value for key, value in options.items() if value is not None}

    def image_options(self) -> dict:
        """The default image controls, as qwen-vl-utils names them (unset ones left out)."""
        options = {"min_pixels": self.image_min_pixels, "max_pixels": self.image_max_pixels}
        return {key: value for key, value in options.items() if value is not None}


__all__ = ["GVEConfig"]
