# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""GVE model: the Qwen2.5-VL backbone, pooled at GVE's pooling token, with no language-model head.

Both Qwen2.5-VL checkpoint layouts load into it: transformers 5.x (`model.language_model.*`,
`model.visual.*`) as they are, and the legacy one (`model.layers.*`, `visual.*`) through a key
mapping given to `from_pretrained`. A `lm_head` in the checkpoint is ignored. Loading fails loudly
when the checkpoint does not cover the whole backbone.
"""

import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel, Qwen2_5_VLPreTrainedModel

from .configuration_gve import HUB_KWARGS, GVEConfig

# Custom model classes skip transformers' built-in key conversions, so the legacy layout is mapped
# at load time: `visual.*` -> `model.visual.*`, `model.*` (the language model) ->
# `model.language_model.*`. Keys already in the 5.x layout match neither pattern.
LEGACY_KEY_MAPPING = {
    r"^visual\.": "model.visual.",
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
}


class GVEModel(Qwen2_5_VLPreTrainedModel):
    r"""
    GVE embedding model.

    `forward` returns the backbone's `last_hidden_state` (after the final norm) and `pooler_output`,
    the L2-normalised hidden state at the last attended position, which [`GVEProcessor`] fills with
    the pooling token. `encode` embeds raw inputs end to end.
    """

    config: GVEConfig
    config_class = GVEConfig
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: GVEConfig):
        super().__init__(config)
        self.model = Qwen2_5_VLModel(config)
        self._processor = None
        self._hub_kwargs = {}
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a checkpoint, refusing one that leaves any backbone weight uninitialised."""
        output_loading_info = kwargs.pop("output_loading_info", False)
        kwargs["key_mapping"] = {**LEGACY_KEY_MAPPING, **(kwargs.get("key_mapping") or {})}
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        if info["missing_keys"]:
            missing = sorted(info["missing_keys"])
            raise ValueError(
                f"The checkpoint at {pretrained_model_name_or_path!r} does not cover the GVE backbone: "
                f"{len(missing)} weight(s) missing, e.g. {missing[:5]}. Refusing to run with random weights."
            )
        model._hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        return (model, info) if output_loading_info else model

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        if (
            input_ids is not None
            and mm_token_type_ids is None
            and (pixel_values is not None or pixel_values_videos is not None)
        ):
            # Without it Qwen2.5-VL silently falls back to 1-D positions for the vision tokens.
            raise ValueError("mm_token_type_ids is required with images or videos; pass the processor's full output")
        kwargs.setdefault("use_cache", False)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            mm_token_type_ids=mm_token_type_ids,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        last = self._last_positions(attention_mask, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if input_ids is not None and not bool((input_ids[rows, last] == self.config.pooling_token_id).all()):
            warnings.warn(
                f"GVE embeddings are read at the pooling token (id {self.config.pooling_token_id}) appended after "
                "the generation prompt, but some inputs do not end with it: use GVEProcessor, or append it.",
                UserWarning,
                stacklevel=2,
            )
        pooled = F.normalize(hidden[rows, last].float(), p=2, dim=-1)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=pooled,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @staticmethod
    def _last_positions(attention_mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
        """Index of each row's last attended token (the last column when padding is on the left)."""
        length = hidden.shape[1]
        if attention_mask is None:
            return torch.full((hidden.shape[0],), length - 1, device=hidden.device)
        return length - 1 - attention_mask.flip(-1).to(torch.long).argmax(-1).to(hidden.device)

    # ------------------------------------------------------------------ end to end

    @property
    def processor(self):
        """The checkpoint's [`GVEProcessor`], loaded on first use."""
        if self._processor is None:
            if not self.name_or_path:
                raise ValueError(
                    "This model was not loaded with from_pretrained, so it has no processor to load; "
                    "set `model.processor = GVEProcessor.from_pretrained(...)` first."
                )
            self._processor = AutoProcessor.from_pretrained(
                self.name_or_path, trust_remote_code=True, **self._hub_kwargs
            )
        return self._processor

    @processor.setter
    def processor(self, value) -> None:
        self._processor = value

    @torch.inference_mode()
    def encode(
        self,
        inputs: Any,
        instruction: str | None = None,
        batch_size: int = 8,
        show_progress_bar: bool | None = None,
        *,
        fps: float | None = None,
        max_frames: int | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        total_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
        max_length: int | None = None,
    ) -> torch.Tensor:
        """Embed inputs; returns a float32 `[N, D]` tensor of L2-normalised embeddings on the CPU.

        Args:
            inputs: one input or a list of them. An input is a text, a PIL image, an image or video
                path or URL, a list of frames (one video), or a dict with any of `text`, `image` and
                `video` (a composed query), optionally with its own `instruction` and controls.
            instruction: the system instruction (default: the checkpoint's `default_instruction`).
                Set a task instruction for queries; leave documents on the default.
            batch_size: inputs per forward pass.
            show_progress_bar: show a progress bar (default: when there is more than one batch).
            fps, max_frames, min_pixels, max_pixels, total_pixels: video sampling controls; defaults
                from the config (fps 1.0, at most 8 frames of at most 200·28·28 pixels).
            image_min_pixels, image_max_pixels: image resolution controls.
            max_length: maximum prompt length in tokens (default: the config's `max_length`).
        """
        from tqdm.auto import tqdm

        if isinstance(inputs, (str, dict)) or not isinstance(inputs, Iterable) or _is_image(inputs):
            inputs = [inputs]
        inputs = list(inputs)
        options = {
            "fps": fps,
            "max_frames": max_frames,
            "min_pixels": min_pixels,
            "max_pixels": max_pixels,
            "total_pixels": total_pixels,
            "image_min_pixels": image_min_pixels,
            "image_max_pixels": image_max_pixels,
        }
        options = {key: value for key, value in options.items() if value is not None}
        starts = range(0, len(inputs), batch_size)
        if show_progress_bar is None:
            show_progress_bar = len(starts) > 1
        embeddings = []
        for start in tqdm(starts, desc="Embedding", disable=not show_progress_bar):
            batch = self.processor.prepare(
                inputs[start : start + batch_size], instruction, max_length=max_length, start=start, **options
            )
            embeddings.append(self(**self._to_device(batch)).pooler_output.cpu())
        if not embeddings:
            return torch.empty(0, self.config.text_config.hidden_size)
        return torch.cat(embeddings)

    def _to_device(self, batch) -> dict:
        """Move model inputs to the model's device, with pixels in its dtype."""
        moved = {
            key: value.to(self.device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()
        }
        for key in ("pixel_values", "pixel_values_videos"):
            if key in moved:
                moved[key] = moved[key].to(self.dtype)
        return moved


def _is_image(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image)


__all__ = ["GVEModel"]
