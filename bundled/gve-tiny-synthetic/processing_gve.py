# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""GVE processor: the Qwen2.5-VL processor plus GVE's embedding prompt rules.

Two ways in:

* `processor.prepare(inputs, instruction=...)` turns embedding inputs (text, images, videos, frame
  lists and `{"text", "image", "video"}` dicts) into model inputs. `GVEModel.encode`, the
  sentence-transformers module and the endpoint handler all go through it.
* `processor(text=..., images=..., videos=..., **video_kwargs)` accepts what
  `qwen_vl_utils.process_vision_info(..., return_video_kwargs=True)` returns, as in the original model
  card, and makes it give the same model inputs: it appends the pooling token, pads on the left and
  never truncates the pooling token away.

The media libraries (qwen-vl-utils, decord, requests) are imported with `_optional_import` when
media is read: text-only use needs none of them, and transformers' remote-code import check, which
treats every `import` statement in the file as required, does not ask for them.
"""

import contextlib
import importlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import Qwen2_5_VLProcessor
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_utils import VideoMetadata

from .configuration_gve import HUB_KWARGS, GVEConfig

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"})
URL_PREFIXES = ("http://", "https://")

# Per-item and per-call controls, in the names qwen-vl-utils uses for a content element.
VIDEO_OPTIONS = ("fps", "max_frames", "min_pixels", "max_pixels", "total_pixels")
IMAGE_OPTIONS = {"image_min_pixels": "min_pixels", "image_max_pixels": "max_pixels"}
ITEM_KEYS = ("text", "image", "video", "instruction", *VIDEO_OPTIONS, *IMAGE_OPTIONS)

GVEInput = str | Image.Image | Sequence[Any] | dict[str, Any]


def worker_count(workers: int | None = None) -> int:
    """How many threads read, decode and preprocess inputs: `workers`, else one per CPU core, at most 8."""
    return workers or min(8, os.cpu_count() or 1)


def worker_pool(workers: int | None = None) -> ThreadPoolExecutor:
    """Threads that read, decode and preprocess inputs (default: `worker_count()`).

    Each runs one torch thread: the workers already run side by side, and the model's own intra-op
    threads are left to the forward pass instead of being oversubscribed.
    """
    return ThreadPoolExecutor(worker_count(workers), "gve-load", initializer=torch.set_num_threads, initargs=(1,))


class GVEInputError(ValueError):
    """An embedding input that cannot be embedded; the message names its position and the reason."""


@dataclass
class GVEItem:
    """One input, read and rendered: its prompt and its decoded media, ready to be batched."""

    label: str
    prompt: str
    images: list[Image.Image] = field(default_factory=list)
    videos: list[torch.Tensor] = field(default_factory=list)
    video_fps: list[float] = field(default_factory=list)
    features: BatchFeature | None = None  # its own model inputs, once `GVEProcessor.featurize` has run
    features_max_length: int | None = None

    def as_vllm_request(self) -> dict[str, Any]:
        """This input as a vLLM offline `LLM.embed` request, carrying exactly GVE's model inputs.

        The prompt ends with the pooling token; video frames go as the THWC float arrays that
        qwen-vl-utils produced, with sampling metadata that gives vLLM the same time positions.
        """
        data: dict[str, Any] = {}
        if self.images:
            data["image"] = self.images[0] if len(self.images) == 1 else self.images
        videos = []
        for frames, fps in zip(self.videos, self.video_fps, strict=True):
            count = len(frames)
            metadata = {
                "fps": fps,
                "frames_indices": list(range(count)),
                "total_num_frames": count,
                "duration": count / fps,
            }
            videos.append((frames.permute(0, 2, 3, 1).numpy(), metadata))
        if videos:
            data["video"] = videos[0] if len(videos) == 1 else videos
        return {"prompt": self.prompt, "multi_modal_data": data} if data else {"prompt": self.prompt}


def _media_kind(text: str) -> str | None:
    """Whether a bare string names an image or a video (by URL scheme or file extension)."""
    if text.startswith("data:image/"):
        return "image"
    if "\n" in text or len(text) > 4096:
        return None
    path = text.split("?", 1)[0].split("#", 1)[0] if text.startswith(URL_PREFIXES) else text
    extension = os.path.splitext(path)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    return None


def _local_path(source: str) -> str | None:
    """The file a media string points at, or None for URLs and inline data."""
    if source.startswith(URL_PREFIXES) or source.startswith("data:"):
        return None
    return source[len("file://") :] if source.startswith("file://") else source


def _describe(source: Any) -> str:
    if isinstance(source, str):
        return repr(source if len(source) <= 120 else source[:117] + "...")
    return type(source).__name__


class GVEProcessor(Qwen2_5_VLProcessor):
    r"""
    Qwen2.5-VL processor with GVE's embedding prompt rules (see [`GVEConfig`]).

    The embedding settings (instruction, pooling token, video and image controls, maximum length) are
    read from the checkpoint's `config.json` by `from_pretrained`, and kept in `embedding_config`.

    `embedding_chat_template` is GVE's prompt format as a chat template: a system turn (the default
    instruction when there is none), the user turn with its videos, then images, then text, and the
    assistant header followed by the pooling token. `load` renders every input with it; checkpoints
    also ship it as `additional_chat_templates/embedding.jinja` for vLLM (`--chat-template`).
    """

    embedding_chat_template = (
        "{#- GVE embedding prompt: system turn (default instruction if none), user turn with its video(s), then\n"
        "    image(s), then text, then the assistant header and the pooling token <|endoftext|>. -#}\n"
        "{%- for message in messages -%}\n"
        "{%- if loop.first and message['role'] != 'system' -%}\n"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "{% endif -%}\n"
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string -%}\n"
        "{{ message['content'] }}\n"
        "{%- else -%}\n"
        "{%- for part in message['content'] if part['type'] == 'video' or 'video' in part or 'video_url' in part -%}\n"
        "<|vision_start|><|video_pad|><|vision_end|>\n"
        "{%- endfor -%}\n"
        "{%- for part in message['content'] if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}\n"
        "<|vision_start|><|image_pad|><|vision_end|>\n"
        "{%- endfor -%}\n"
        "{%- for part in message['content'] if part['type'] == 'text' -%}\n"
        "{{ part['text'] }}\n"
        "{%- endfor -%}\n"
        "{%- endif -%}\n"
        "<|im_end|>\n"
        "{% endfor -%}\n"
        "<|im_start|>assistant\n<|endoftext|>\n"
    )

    def __init__(self, image_processor=None, tokenizer=None, video_processor=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, video_processor, chat_template=chat_template, **kwargs)
        self.tokenizer.padding_side = "left"
        self.embedding_config = GVEConfig()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        try:
            processor.embedding_config = GVEConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        except OSError:
            warnings.warn(
                f"No config.json beside the processor in {pretrained_model_name_or_path!r}; "
                "using GVE's default embedding settings.",
                stacklevel=2,
            )
        return processor

    def to_dict(self) -> dict[str, Any]:
        """Serialise, naming the stock class so that tools without remote code load this folder.

        mteb and vLLM call `AutoProcessor.from_pretrained(path)` without `trust_remote_code`; with
        `processor_class: Qwen2_5_VLProcessor` that gives the stock processor (same chat template,
        left padding from the tokenizer config), while `auto_map` sends `trust_remote_code=True`
        users here.
        """
        output = super().to_dict()
        output["processor_class"] = "Qwen2_5_VLProcessor"
        output["auto_map"] = {"AutoProcessor": "processing_gve.GVEProcessor"}
        return output

    @property
    def pooling_token(self) -> str:
        """The token appended after the generation prompt; the embedding is read there."""
        return self.tokenizer.convert_ids_to_tokens(self.embedding_config.pooling_token_id)

    # ------------------------------------------------------------------ embedding inputs

    def prepare(
        self,
        inputs: Sequence[GVEInput],
        instruction: str | None = None,
        *,
        max_length: int | None = None,
        start: int = 0,
        **options: Any,
    ) -> BatchFeature:
        """Read, render and batch embedding inputs into model inputs (PyTorch tensors).

        Inputs are read and decoded in worker threads (`worker_pool`), one per CPU core.

        Args:
            inputs: the inputs; see `load` for the kinds accepted.
            instruction: system instruction (default: `embedding_config.default_instruction`).
            max_length: maximum prompt length in tokens (default: `embedding_config.max_length`).
            start: position of `inputs[0]` in the caller's list, used in error messages.
            **options: video controls (`fps`, `max_frames`, `min_pixels`, `max_pixels`, `total_pixels`)
                and image controls (`image_min_pixels`, `image_max_pixels`).
        """

        def load(position: int, item: GVEInput) -> GVEItem:
            loaded = self.load(item, instruction, label=f"inputs[{start + position}]", **options)
            self.featurize(loaded, max_length, release_media=True)
            return loaded

        if len(inputs) < 2:
            items = [load(position, item) for position, item in enumerate(inputs)]
        else:  # decode side by side; the first failing input (in order) raises
            with worker_pool(min(len(inputs), os.cpu_count() or 1, 8)) as pool:
                items = list(pool.map(load, range(len(inputs)), inputs))
        return self.collate(items, max_length=max_length)

    def load(self, item: GVEInput, instruction: str | None = None, *, label: str = "inputs[0]", **options) -> GVEItem:
        """Read one input: check it, decode its media with qwen-vl-utils and render its prompt.

        An input is one of:
            - a `str`: text, or an image/video path or URL when it ends in a media file extension;
            - a `PIL.Image.Image`;
            - a list or tuple of frames (PIL images, image paths or HxWxC arrays): one video;
            - a dict with any of `text`, `image`, `video`, plus optionally `instruction` and the
              video/image controls for this item alone.

        Raises:
            GVEInputError: naming `label` and the reason, for anything that cannot be embedded.
        """
        unknown = sorted(set(options) - {*VIDEO_OPTIONS, *IMAGE_OPTIONS})
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; the options are {[*VIDEO_OPTIONS, *IMAGE_OPTIONS]}")
        content = self._parse(item, label)
        for key in (*VIDEO_OPTIONS, *IMAGE_OPTIONS):
            value = content.get(key, options.get(key))
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise GVEInputError(f"{label}: {key} must be a positive number, got {value!r}")
        config = self.embedding_config
        video_options = {**config.video_options(), **_pick(options, VIDEO_OPTIONS), **_pick(content, VIDEO_OPTIONS)}
        image_options = {**config.image_options(), **_renamed(options), **_renamed(content)}
        needed = self.video_processor.temporal_patch_size
        if "video" in content and video_options["max_frames"] < needed:
            raise GVEInputError(f"{label}: max_frames must be at least {needed} (the temporal patch size)")
        for kind, chosen in (("video", video_options), ("image", image_options)):
            if kind in content and chosen.get("min_pixels", 0) > chosen.get("max_pixels", float("inf")):
                prefix = "" if kind == "video" else "image_"
                raise GVEInputError(
                    f"{label}: {prefix}min_pixels ({chosen['min_pixels']}) exceeds {prefix}max_pixels "
                    f"({chosen['max_pixels']})"
                )
        instruction = content.get("instruction", instruction)
        if instruction is None:
            instruction = config.default_instruction

        loaded = GVEItem(label=label, prompt="")
        parts = []
        if "video" in content:
            video, fps = self._fetch_video(content["video"], video_options, label)
            loaded.videos.append(video)
            loaded.video_fps.append(fps)
            parts.append({"type": "video"})
        if "image" in content:
            loaded.images.append(self._fetch_image(content["image"], image_options, label))
            parts.append({"type": "image"})
        if "text" in content:
            parts.append({"type": "text", "text": content["text"]})
        conversation = [{"role": "system", "content": instruction}, {"role": "user", "content": parts}]
        loaded.prompt = self.apply_chat_template(conversation, chat_template=self.embedding_chat_template)
        return loaded

    def featurize(self, item: GVEItem, max_length: int | None = None, release_media: bool = False) -> BatchFeature:
        """One loaded input's own model inputs (unpadded), computed once and kept on the item.

        This is the costly part of preprocessing (image and video patches, tokenization, truncation),
        so the encode pipeline runs it in its worker threads; `collate` then only pads and
        concatenates. `release_media=True` drops the decoded media once they are no longer needed.
        """
        max_length = max_length or self.embedding_config.max_length
        if item.features is None or item.features_max_length != max_length:
            item.features = self._encode(
                text=[item.prompt],
                images=item.images or None,
                videos=item.videos or None,
                labels=[item.label],
                fps=item.video_fps or None,
                # qwen-vl-utils already sized the media to the patch grid, within the caller's limits.
                images_kwargs={"do_resize": False},
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            item.features_max_length = max_length
        if release_media:
            item.images, item.videos = [], []
        return item.features

    def collate(self, items: Sequence[GVEItem], max_length: int | None = None) -> BatchFeature:
        """Batch loaded inputs into model inputs, left-padded, each ending in the pooling token."""
        features = [self.featurize(item, max_length) for item in items]
        ids = [row["input_ids"][0].tolist() for row in features]
        batch = dict(self.tokenizer.pad({"input_ids": ids}, padding=True, padding_side="left", return_tensors="pt"))
        batch["mm_token_type_ids"] = torch.tensor(self.create_mm_token_type_ids(batch["input_ids"]))
        for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
            parts = [row[key] for row in features if key in row]
            if parts:
                batch[key] = torch.cat(parts)
        return BatchFeature(batch)

    @staticmethod
    def _parse(item: GVEInput, label: str) -> dict[str, Any]:
        """Normalise one input into a dict with `text`/`image`/`video` keys, checking types."""
        if isinstance(item, str):
            kind = _media_kind(item)
            content = {kind or "text": item}
        elif isinstance(item, Image.Image):
            content = {"image": item}
        elif isinstance(item, (list, tuple)):
            content = {"video": item}
        elif isinstance(item, dict):
            unknown = sorted(str(key) for key in item if key not in ITEM_KEYS)
            if unknown:
                raise GVEInputError(f"{label}: unknown key(s) {unknown}; allowed keys are {list(ITEM_KEYS)}")
            content = {key: value for key, value in item.items() if value is not None}
        else:
            raise GVEInputError(
                f"{label}: expected a str, a PIL image, a list of frames or a dict, got {type(item).__name__}"
            )
        for key, allowed in (("text", (str,)), ("instruction", (str,)), ("image", (str, Image.Image))):
            if key in content and not isinstance(content[key], allowed):
                names = " or ".join("str" if kind is str else "PIL image" for kind in allowed)
                raise GVEInputError(f"{label}: {key!r} must be a {names}, got {type(content[key]).__name__}")
        if "video" in content and not isinstance(content["video"], (str, list, tuple)):
            raise GVEInputError(
                f"{label}: 'video' must be a path, a URL or a list of frames, got {type(content['video']).__name__}"
            )
        if "text" in content and not content["text"].strip():
            del content["text"]
        if not any(content.get(key) not in (None, "", [], ()) for key in ("text", "image", "video")):
            raise GVEInputError(f"{label}: the input has no content; give text, an image or a video")
        return content

    def _fetch_image(self, source: Any, options: dict, label: str) -> Image.Image:
        fetch_image = _optional_import("qwen_vl_utils", "qwen-vl-utils").fetch_image

        if isinstance(source, str) and (path := _local_path(source)) is not None and not os.path.isfile(path):
            raise GVEInputError(f"{label}: image file not found: {_describe(source)}")
        with contextlib.ExitStack() as stack:
            if isinstance(source, str) and source.startswith(URL_PREFIXES):
                # qwen-vl-utils would fetch it with no timeout
                source_file = stack.enter_context(_downloaded(source, label, "image"))
            else:
                source_file = source
            try:
                return fetch_image({"image": source_file, **options})
            except Exception as error:
                raise GVEInputError(f"{label}: could not read image {_describe(source)}: {error}") from error

    def _fetch_video(self, source: Any, options: dict, label: str) -> tuple[torch.Tensor, float]:
        """Decode and sample one video with qwen-vl-utils; returns its frames and their rate."""
        fetch_video = _optional_import("qwen_vl_utils", "qwen-vl-utils").fetch_video

        element = {"video": source, **options}
        if not isinstance(source, str):
            element["video"] = self._frames(source, options["max_frames"], label)
            # A frame list carries no timing: its frames are taken as sampled at `fps`.
            element["sample_fps"] = options["fps"]
            try:
                return fetch_video(element, return_video_sample_fps=True)
            except Exception as error:
                raise GVEInputError(f"{label}: could not read video frames: {error}") from error

        path = _local_path(source)
        if path is not None and not os.path.isfile(path):
            raise GVEInputError(f"{label}: video file not found: {_describe(source)}")
        with contextlib.ExitStack() as stack:
            if path is None:
                path = stack.enter_context(_downloaded(source, label, "video"))
            element["video"] = path  # a plain path: decord reads neither file:// nor non-seekable URLs
            try:
                return _read_video_file(element)
            except Exception as error:
                reason = self._video_failure(path, error)
                raise GVEInputError(f"{label}: could not read video {_describe(source)}: {reason}") from error

    @staticmethod
    def _frames(frames: Sequence[Any], max_frames: int, label: str) -> list:
        """Check a frame list, and thin it to `max_frames` the way qwen-vl-utils samples a file.

        qwen-vl-utils takes every frame of a list, so without this a long list is unbounded.
        """
        checked = []
        for index, frame in enumerate(frames):
            if isinstance(frame, np.ndarray) and frame.ndim == 3:
                frame = Image.fromarray(frame)
            if not isinstance(frame, (str, Image.Image)):
                raise GVEInputError(
                    f"{label}: video frame {index} must be a PIL image, an image path or an HxWxC array, "
                    f"got {type(frame).__name__}"
                )
            checked.append(frame)
        if len(checked) > max_frames:
            count = max(2, int(max_frames) // 2 * 2)
            keep = torch.linspace(0, len(checked) - 1, count).round().long().tolist()
            checked = [checked[i] for i in keep]
        return checked

    def _video_failure(self, source: str, error: Exception) -> str:
        """Why a video could not be read, checked directly with decord.

        qwen-vl-utils falls back to `torchvision.io.read_video` when its reader fails; recent
        torchvision no longer has it, so the error it raises hides the real cause.
        """
        if os.path.getsize(source) == 0:
            return "the file is empty (0 bytes)"
        extension = os.path.splitext(source)[1].lower()
        hint = (
            "" if extension in VIDEO_EXTENSIONS else f"; {extension or 'no extension'!r} is not a video file extension"
        )
        try:
            reader = _optional_import("decord", "decord").VideoReader(source)
            frames = len(reader)
        except Exception as probe_error:
            return f"not a readable video ({_first_line(probe_error)}){hint}"
        needed = self.video_processor.temporal_patch_size
        if frames < needed:
            return f"the video has {frames} frame(s); at least {needed} are needed (the temporal patch size){hint}"
        try:
            reader.get_batch([0, frames // 2, frames - 1])
        except Exception as probe_error:
            return f"its frames could not be decoded ({_first_line(probe_error)}){hint}"
        return f"{type(error).__name__}: {error}{hint}"

    # ------------------------------------------------------------------ model-card style calls

    def __call__(self, images=None, text=None, videos=None, **kwargs) -> BatchFeature:
        """Qwen2.5-VL's processor call, made to give GVE's model inputs.

        On top of the stock call it:
            - appends the pooling token to every text that does not already end with it;
            - pads on the left (unless `padding_side` is given);
            - accepts `fps` as returned by `qwen_vl_utils.process_vision_info(..., return_video_kwargs=True)`
              (a list, one value per video), and videos as `(frames, metadata)` pairs from
              `return_video_metadata=True`;
            - truncates only text, keeping the template's tail and its pooling token; an input whose
              non-text part alone is too long raises an error.
        """
        return self._encode(images=images, text=text, videos=videos, **kwargs)

    def _encode(self, images=None, text=None, videos=None, labels=None, fps=None, **kwargs) -> BatchFeature:
        if isinstance(text, str):
            text = [text]
        if text is not None:
            text = [prompt if prompt.endswith(self.pooling_token) else prompt + self.pooling_token for prompt in text]
            labels = labels or [f"text[{i}]" for i in range(len(text))]
        videos, kwargs = self._with_video_metadata(videos, fps, kwargs)
        text_kwargs = dict(kwargs.pop("text_kwargs", None) or {})
        truncation = kwargs.pop("truncation", text_kwargs.pop("truncation", None))
        max_length = kwargs.pop("max_length", text_kwargs.pop("max_length", None))
        text_kwargs.setdefault("padding_side", kwargs.pop("padding_side", "left"))
        batch = super().__call__(images=images, text=text, videos=videos, text_kwargs=text_kwargs, **kwargs)
        if text is not None and truncation not in (None, False, "do_not_truncate"):
            batch = self._fit(batch, max_length or self.embedding_config.max_length, labels, kwargs)
        return batch

    def _with_video_metadata(self, videos, fps, kwargs: dict) -> tuple[Any, dict]:
        """Turn qwen-vl-utils' per-video `fps` (or `(frames, metadata)` pairs) into `video_metadata`.

        The stock processor types `fps` as one number (a sampling target) and rejects the list
        qwen-vl-utils returns; per-video metadata carries the same information.
        """
        if videos is None:
            return videos, kwargs
        if isinstance(videos, (list, tuple)) and videos and all(isinstance(v, tuple) and len(v) == 2 for v in videos):
            videos, metadata = (list(part) for part in zip(*videos, strict=True))
            kwargs = {**kwargs, "video_metadata": metadata, "do_sample_frames": False}
        elif fps is not None:
            frames = list(videos) if isinstance(videos, (list, tuple)) else [videos]
            rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(frames)
            if len(rates) != len(frames):
                raise ValueError(f"got {len(rates)} fps values for {len(frames)} videos")
            metadata = [
                VideoMetadata(total_num_frames=len(video), fps=float(rate), frames_indices=list(range(len(video))))
                for video, rate in zip(frames, rates, strict=True)
            ]
            kwargs = {**kwargs, "video_metadata": metadata, "do_sample_frames": False}
        else:
            return videos, kwargs
        # The frames were sampled and sized by qwen-vl-utils within the caller's limits; resizing
        # them again to the video processor's own bounds would override those limits. (The pixel cap
        # flag only silences transformers' notice about its default: nothing is resized.)
        videos_kwargs = {"do_resize": False, "cap_pixels_per_frame": True, **(kwargs.get("videos_kwargs") or {})}
        kwargs["videos_kwargs"] = videos_kwargs
        return videos, kwargs

    def _fit(self, batch: BatchFeature, max_length: int, labels: list[str], kwargs: dict) -> BatchFeature:
        """Cut over-long prompts to `max_length`, removing text only, and pad them again."""
        rows = [
            [int(token) for token, keep in zip(ids, mask, strict=True) if keep]
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        ]
        if all(len(row) <= max_length for row in rows):
            return batch
        rows = [
            self._truncate(row, max_length, label) if len(row) > max_length else row
            for row, label in zip(rows, labels, strict=True)
        ]
        return_tensors = kwargs.get("return_tensors")
        padded = self.tokenizer.pad(
            {"input_ids": rows}, padding=True, padding_side="left", return_tensors=return_tensors
        )
        batch["input_ids"] = padded["input_ids"]
        batch["attention_mask"] = padded["attention_mask"]
        if "mm_token_type_ids" in batch:
            token_types = self.create_mm_token_type_ids(padded["input_ids"])
            batch["mm_token_type_ids"] = torch.tensor(token_types) if return_tensors == "pt" else token_types
        return batch

    def _truncate(self, ids: list[int], max_length: int, label: str) -> list[int]:
        """Remove the end of the user text so the prompt fits, keeping the template's tail.

        The tail runs from the last `<|im_end|>` (or, for a bare text, the pooling token) to the end.
        The text is the run of ordinary tokens just before it, after the vision tokens or the user
        turn's header; nothing else is ever cut.
        """
        excess = len(ids) - max_length
        im_start, im_end = self.tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
        structural = set(self.tokenizer.added_tokens_decoder)
        tail = max((i for i, token in enumerate(ids) if token == im_end), default=len(ids) - 1)
        start = tail
        while start > 0 and ids[start - 1] not in structural:
            start -= 1
        if start > 0 and ids[start - 1] == im_start:  # skip the role line, e.g. "user\n"
            while start < tail:
                start += 1
                if "\n" in self.tokenizer.decode([ids[start - 1]]):
                    break
        if tail - start < excess:
            raise GVEInputError(
                f"{label}: the prompt needs {len(ids)} tokens, more than max_length={max_length}, and only "
                f"{tail - start} of them are text that can be cut; raise max_length, or lower the image/video "
                "pixel and frame limits"
            )
        warnings.warn(
            f"{label}: text truncated by {excess} tokens to fit max_length={max_length}", UserWarning, stacklevel=4
        )
        return ids[: tail - excess] + ids[tail:]


def _read_video_file(element: dict) -> tuple[torch.Tensor, float]:
    """`qwen_vl_utils.fetch_video(element, return_video_sample_fps=True)` for a video file, the same frames.

    qwen-vl-utils opens decord with its default frame threading (`num_threads=0`) and has no way to
    change it. `encode` already decodes several videos at once in its worker threads, and there one
    decoding thread per video reads about 1.5 times more videos per CPU second (benchmarks/RESULTS.md).
    So, when qwen-vl-utils' reader is decord, this reads the frames qwen-vl-utils would pick with one
    thread and sizes them with qwen-vl-utils' own rules; tests/test_inputs.py checks the result is
    equal, element for element, to `fetch_video`'s. Any other reader goes through `fetch_video` itself.
    """
    vision = _optional_import("qwen_vl_utils", "qwen-vl-utils").vision_process
    if vision.get_video_reader_backend() != "decord":
        return vision.fetch_video(element, return_video_sample_fps=True)
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    reader = _optional_import("decord", "decord").VideoReader(element["video"], num_threads=1)
    total, rate = len(reader), reader.get_avg_fps()
    start, end, total = vision.calculate_video_frame_range(element, total, rate)
    count = vision.smart_nframes(element, total_frames=total, video_fps=rate)
    indices = torch.linspace(start, end, count).round().long().tolist()
    # contiguous: torch's antialiased resize runs 30% faster on NCHW frames of 448 pixels than on the
    # channels-last view of decord's NHWC array, with the same result
    video = torch.from_numpy(reader.get_batch(indices).asnumpy()).permute(0, 3, 1, 2).contiguous()
    # fetch_video's sizing of a decoded video, with its constants
    factor = 14 * vision.SPATIAL_MERGE_SIZE  # fetch_video's default patch size, the one this processor uses
    min_pixels = element.get("min_pixels", vision.VIDEO_MIN_TOKEN_NUM * factor * factor)
    total_pixels = element.get("total_pixels", vision.MODEL_SEQ_LEN * factor * factor * 0.9)
    limit = min(vision.VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / count * vision.FRAME_FACTOR)
    max_pixels = min(element.get("max_pixels", float("inf")), max(limit, int(min_pixels * 1.05)))
    height, width = vision.smart_resize(
        video.shape[2], video.shape[3], factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
    )
    video = TF.resize(video, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    return video, count / max(total, 1e-6) * rate


def _optional_import(module: str, package: str):
    """Import a media library, with an install hint when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"Reading images and videos needs {package}: pip install {package}") from error


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextlib.contextmanager
def _downloaded(url: str, label: str, kind: str, timeout: float = 60.0) -> Iterator[str]:
    """Download an image or video URL to a temporary file, removed afterwards.

    decord streams URLs only from servers that answer HTTP range requests, and fails on the rest
    ("partial file"); qwen-vl-utils fetches image URLs with no timeout. So media are read from a
    local copy, downloaded with a timeout (per network read).
    """
    requests = _optional_import("requests", "requests")
    suffix = os.path.splitext(url.split("?", 1)[0].split("#", 1)[0])[1][:8]
    handle, path = tempfile.mkstemp(suffix=suffix, prefix=f"gve-{kind}-")
    try:
        with os.fdopen(handle, "wb") as file, requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=1 << 20):
                file.write(chunk)
    except Exception as error:
        os.remove(path)
        raise GVEInputError(f"{label}: could not read {kind} {_describe(url)}: {error}") from error
    try:
        yield path
    finally:
        os.remove(path)


def _pick(options: dict, keys: Sequence[str]) -> dict:
    return {key: options[key] for key in keys if options.get(key) is not None}


def _renamed(options: dict) -> dict:
    """Image controls under the names qwen-vl-utils' `fetch_image` expects."""
    return {name: options[key] for key, name in IMAGE_OPTIONS.items() if options.get(key) is not None}


__all__ = ["GVEProcessor", "GVEInputError", "GVEItem"]
