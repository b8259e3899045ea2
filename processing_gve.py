# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""GVE processor: the Qwen2.5-VL processor plus GVE's embedding prompt rules, and the one way media are read.

Two ways in:

* `processor.prepare(inputs, instruction=...)` turns embedding inputs (text, images, videos, frame
  lists and `{"text", "image", "video"}` dicts) into model inputs. `GVEModel.encode`, the
  sentence-transformers module and the endpoint handler all go through it.
* `processor(text=..., images=..., videos=..., **video_kwargs)` accepts what
  `qwen_vl_utils.process_vision_info(..., return_video_kwargs=True)` returns, as in the original model
  card, and makes it give the same model inputs: it appends the pooling token, pads on the left and
  never truncates the pooling token away.

Inputs may come from anyone (an endpoint's clients, a manifest), so reading them is bounded by
`MediaLimits`: `fetch_media` is the only code that downloads (every URL the project reads goes
through it), and images and videos are measured from their headers before they are decoded.

Videos are read with torchcodec when its FFmpeg libraries load, else with decord (`video_reader`; the
`GVE_VIDEO_READER` variable forces either). The media libraries (qwen-vl-utils, torchcodec, decord, PyAV) are
imported with `_optional_import` when media are read: text-only use needs none of them, and transformers'
remote-code import check, which treats every `import` statement in the file as required, does not ask for them.
"""

import base64
import binascii
import bisect
import collections
import contextlib
import dataclasses
import functools
import http.client
import importlib
import ipaddress
import itertools
import math
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

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
MIME_SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/mpeg": ".mpg",
    "video/x-flv": ".flv",
    "video/x-ms-wmv": ".wmv",
}
DEFAULT_SUFFIXES = {"image": ".png", "video": ".mp4"}

# Per-item and per-call controls, in the names qwen-vl-utils uses for a content element.
VIDEO_OPTIONS = ("fps", "max_frames", "min_pixels", "max_pixels", "total_pixels")
IMAGE_OPTIONS = {"image_min_pixels": "min_pixels", "image_max_pixels": "max_pixels"}
# A video's time range in seconds, with qwen-vl-utils' keys and frame rule (`calculate_video_frame_range`).
TIME_RANGE = ("video_start", "video_end")
# Segments' default stride, as a fraction of the window. On the synthetic moments' validation fold, half a window took
# the bundled model's R@1 at IoU >= 0.5 from 0.60 (end to end) to 0.75 for 1.8 times the windows; a quarter, to 0.78,
# and at IoU >= 0.7 from 0.38 to 0.58, for 1.9 times as many again (benchmarks/SEGMENTS.md).
SEGMENT_STRIDE = 0.5
ITEM_KEYS = ("text", "image", "video", "instruction", *TIME_RANGE, *VIDEO_OPTIONS, *IMAGE_OPTIONS)

# The range of each control, whoever sets it: out of range, an embedding would need unbounded memory
# (qwen-vl-utils sizes frames up to `min_pixels` and samples up to `fps` frames a second, whatever they are),
# or qwen-vl-utils sizes frames to nothing (below one 28x28 merged patch). The upper bounds are qwen-vl-utils'
# own (FPS_MAX_FRAMES, IMAGE_MAX_TOKEN_NUM, MODEL_SEQ_LEN).
PATCH_PIXELS = 28 * 28
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "fps": (0.0, 240.0),  # above 0
    "max_frames": (2, 768),
    "min_pixels": (PATCH_PIXELS, 16384 * PATCH_PIXELS),
    "max_pixels": (PATCH_PIXELS, 16384 * PATCH_PIXELS),
    "total_pixels": (PATCH_PIXELS, 128000 * PATCH_PIXELS),
    "image_min_pixels": (PATCH_PIXELS, 16384 * PATCH_PIXELS),
    "image_max_pixels": (PATCH_PIXELS, 16384 * PATCH_PIXELS),
}
INTEGER_CONTROLS = frozenset(CONTROL_RANGES) - {"fps"}

# Decoding work is counted in decoded video pixels (`MediaLimits.max_decode_pixels`); a sampled frame and an image
# cost more per pixel than a frame the decoder only passes through. Measured on one core here (SECURITY.md):
# decoding a near-empty 4K H.264 frame took 1.3 ns a pixel, converting a sampled frame to RGB and resizing it
# (antialiased, as fetch_video does) 21 ns a pixel, and qwen-vl-utils' read of a 50-megapixel PNG or WebP 21 ns.
SAMPLED_FRAME_COST = 17
IMAGE_PIXEL_COST = 17

# Tokens kept past `max_length` when a long text is cut before tokenization (`GVEProcessor._clip_text`): more
# than the few tokens at the end of a cut text that can differ from the whole text's.
CLIP_MARGIN_TOKENS = 64

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
    """An embedding input that cannot be embedded.

    The message is `"<label>: <reason>"` (e.g. `inputs[3]: could not read video ...`); callers that map
    errors to their own names read `position` (the input's index in the call), `field` (`"text"`,
    `"image"`, `"video"`, `"instruction"` or a control's name, when one is at fault) and `reason`.
    """

    def __init__(self, label: str, reason: str, *, position: int | None = None, field: str | None = None):
        super().__init__(f"{label}: {reason}")
        self.label, self.reason, self.position, self.field = label, reason, position, field

    def __reduce__(self):  # keyword attributes survive pickling (Ray moves errors between processes)
        return _input_error, (self.label, self.reason, self.position, self.field)


def _input_error(label: str, reason: str, position: int | None, field: str | None) -> GVEInputError:
    return GVEInputError(label, reason, position=position, field=field)


class MediaError(ValueError):
    """An image or video that cannot, or may not, be fetched or decoded; the message is the reason alone.

    `field` is the input's key at fault when it is not the medium itself (`video_start`, `video_end`).
    """

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class MediaLimits:
    """How far reading the media of untrusted inputs may go: where downloads may lead, and what they may cost.

    Each limit is a keyword argument, else its environment variable, else the default (`MediaLimits.from_env`).
    `encode(..., limits=...)` and `prepare(..., limits=...)` take a `MediaLimits`, or a dict of limits that
    overrides the environment for that call. The library reads from private hosts by default (users' own
    storage) but bounds sizes, time and decoding; the endpoint handler's limits (`handler.HandlerLimits`)
    refuse internal hosts too, and are smaller.

    | limit | environment variable | default | what it bounds |
    | --- | --- | --- | --- |
    | `allow_private_hosts` | `GVE_ALLOW_PRIVATE_HOSTS` | True | downloads from internal hosts (loopback, private...) |
    | `allowed_schemes` | `GVE_ALLOWED_SCHEMES` | `http,https` | URL schemes media are downloaded from |
    | `download_timeout` | `GVE_DOWNLOAD_TIMEOUT` | 60 | seconds for one download in all (lookup, redirects, body) |
    | `max_redirects` | `GVE_MAX_REDIRECTS` | 5 | redirects followed by one download |
    | `max_image_bytes` | `GVE_MAX_IMAGE_BYTES` | 50000000 | one image, downloaded or from a data URI |
    | `max_video_bytes` | `GVE_MAX_VIDEO_BYTES` | 1000000000 | one video, downloaded or from a data URI |
    | `max_image_pixels` | `GVE_MAX_IMAGE_PIXELS` | 100000000 | pixels of one image or frame, read from its header |
    | `max_video_frame_pixels` | `GVE_MAX_VIDEO_FRAME_PIXELS` | 9437184 (4096·2304) | pixels of a frame (header) |
    | `max_decode_pixels` | `GVE_MAX_DECODE_PIXELS` | 100000000000 | decoding work of one image or video (below) |
    | `max_call_decode_pixels` | `GVE_MAX_CALL_DECODE_PIXELS` | None | decoding work of all media of one call |

    Decoding work is counted in decoded video pixels: the pixels of every frame the decoder goes through to
    reach the sampled ones (from the keyframe before each), plus `SAMPLED_FRAME_COST` times those of each
    sampled frame (its conversion and resizing) and `IMAGE_PIXEL_COST` times those of each image; a unit is
    about 1.3 ns of CPU on a 2020s x86 core.
    """

    allow_private_hosts: bool = True
    allowed_schemes: tuple[str, ...] = ("http", "https")
    download_timeout: float = 60.0
    max_redirects: int = 5
    max_image_bytes: int = 50_000_000
    max_video_bytes: int = 1_000_000_000
    max_image_pixels: int = 100_000_000
    max_video_frame_pixels: int = 4096 * 2304
    max_decode_pixels: int = 100_000_000_000
    max_call_decode_pixels: int | None = None

    def __post_init__(self) -> None:
        schemes = self.allowed_schemes
        if isinstance(schemes, str):
            schemes = schemes.split(",")
        schemes = tuple(dict.fromkeys(str(scheme).strip().lower() for scheme in schemes if str(scheme).strip()))
        if not schemes or not set(schemes) <= {"http", "https"}:
            raise ValueError(f"allowed_schemes: must be some of http, https, got {schemes}")
        object.__setattr__(self, "allowed_schemes", schemes)
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.type is bool and not isinstance(value, bool):
                raise ValueError(f"{spec.name}: must be true or false, got {value!r}")
            if spec.type not in (int, float, int | None) or (value is None and spec.type == int | None):
                continue
            integral = spec.type is not float
            if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
                raise ValueError(f"{spec.name}: must be {'an integer' if integral else 'a number'}, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{spec.name}: must be positive, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "MediaLimits":
        """Limits from keyword arguments, else `GVE_<NAME>` environment variables, else the defaults."""
        environ = os.environ if environ is None else environ
        names = [spec.name for spec in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"unknown limit(s) {unknown}; the limits are {names}")
        values = {}
        for spec in dataclasses.fields(cls):
            variable = "GVE_" + spec.name.upper()
            raw = environ.get(variable)
            if spec.name in overrides:
                values[spec.name] = overrides[spec.name]
            elif raw is not None and raw.strip():
                values[spec.name] = _parse_setting(variable, raw.strip(), spec.type)
        return cls(**values)

    @classmethod
    def resolve(cls, limits: "MediaLimits | Mapping[str, Any] | None") -> "MediaLimits":
        """The limits of one call: as given, or the environment's with a dict's overrides."""
        if isinstance(limits, cls):
            return limits
        if dataclasses.is_dataclass(limits) and not isinstance(limits, type):
            # another copy of this class (the remote code loaded from another folder), or a subclass
            return cls(**{spec.name: getattr(limits, spec.name) for spec in dataclasses.fields(cls)})
        if limits is not None and not isinstance(limits, Mapping):
            raise TypeError(f"limits must be a MediaLimits or a dict of its fields, got {type(limits).__name__}")
        return cls.from_env(**(limits or {}))


def _parse_setting(variable: str, raw: str, kind: Any) -> Any:
    """An environment variable's value as the type of its limit."""
    if kind is bool:
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(f"{variable}: expected true or false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if kind == int | None and raw.lower() == "none":
        return None
    if kind in (int, float, int | None):
        try:
            return float(raw) if kind is float else int(raw)
        except ValueError:
            raise ValueError(
                f"{variable}: expected {'a number' if kind is float else 'an integer'}, got {raw!r}"
            ) from None
    return raw


class DecodeBudget:
    """One call's limits, and the decoding work (in pixels, see `MediaLimits.max_decode_pixels`) left to it,
    shared by the worker threads that read its inputs (`GVEProcessor.decode_budget` makes one)."""

    def __init__(self, limits: MediaLimits) -> None:
        self.limits, self.left = limits, limits.max_call_decode_pixels
        self._lock = threading.Lock()

    def spend(self, pixels: int) -> None:
        """Take `pixels` of work for one image or video, or raise `MediaError` if it, or the call, would exceed its
        budget."""
        limits = self.limits
        if pixels > limits.max_decode_pixels:
            raise MediaError(
                f"decoding it takes {pixels:,} pixels of work, more than max_decode_pixels={limits.max_decode_pixels:,}"
                " (lower fps or max_frames, or re-encode it smaller or with more keyframes)"
            )
        if self.left is None:
            return
        with self._lock:
            if pixels > self.left:
                raise MediaError(
                    f"decoding it takes {pixels:,} pixels of work, more than the {self.left:,} left of this call's "
                    f"max_call_decode_pixels={limits.max_call_decode_pixels:,}"
                )
            self.left -= pixels


@dataclass
class GVEItem:
    """One input, read and rendered: its prompt and its decoded media, ready to be batched."""

    label: str
    prompt: str
    position: int | None = None  # its index in the call, for errors
    images: list[Image.Image] = field(default_factory=list)
    videos: list[torch.Tensor] = field(default_factory=list)
    video_fps: list[float] = field(default_factory=list)
    features: BatchFeature | None = None  # its own model inputs, once `GVEProcessor.featurize` has run
    features_max_length: int | None = None
    span: tuple[float, float] | None = None  # a segment's (start, end) in seconds (`GVEProcessor.load_segments`)

    def as_vllm_request(self) -> dict[str, Any]:
        """This input as a vLLM offline `LLM.embed` request, carrying exactly GVE's model inputs.

        The prompt ends with the pooling token; video frames go as the THWC float arrays that qwen-vl-utils
        produced, with sampling metadata that gives vLLM the same time positions, and `do_resize=False`: the media
        are already sized to the patch grid, and vLLM's processor would otherwise resize them to its own bounds
        (a video of small frames grew from 92 to 896 tokens). vLLM then gets the same pixels, grids and tokens;
        the text after a video still gets other positions than transformers 5.x gives it when the video lasts
        longer (in rope steps) than it is wide or high (benchmarks/VLLM.md).
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
        if not data:
            return {"prompt": self.prompt}
        return {"prompt": self.prompt, "multi_modal_data": data, "mm_processor_kwargs": {"do_resize": False}}


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


def describe_source(source: Any) -> str:
    """A short quoted form of an input's media for messages: a path or URL (cut at 120 characters), a data URI's
    header, or the type of anything else."""
    if not isinstance(source, str):
        return type(source).__name__
    if source[:5].lower() == "data:":
        return repr(source.split(",", 1)[0] + ",...")
    return repr(source if len(source) <= 120 else source[:117] + "...")


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

    def prepare(
        self,
        inputs: Sequence[GVEInput],
        instruction: str | None = None,
        *,
        max_length: int | None = None,
        start: int = 0,
        limits: "MediaLimits | Mapping[str, Any] | None" = None,
        **options: Any,
    ) -> BatchFeature:
        """Read, render and batch embedding inputs into model inputs (PyTorch tensors).

        Inputs are read and decoded in worker threads (`worker_pool`), one per CPU core.

        Args:
            inputs: the inputs; see `load` for the kinds accepted.
            instruction: system instruction (default: `embedding_config.default_instruction`).
            max_length: maximum prompt length in tokens (default: `embedding_config.max_length`).
            start: position of `inputs[0]` in the caller's list, used in error messages.
            limits: what reading media may cost (`MediaLimits`, or a dict of its fields; default: the
                `GVE_*` environment variables, else `MediaLimits`' defaults).
            **options: video controls (`fps`, `max_frames`, `min_pixels`, `max_pixels`, `total_pixels`)
                and image controls (`image_min_pixels`, `image_max_pixels`), each within `CONTROL_RANGES`.
        """
        max_length = self.check_call(max_length, options)
        budget = self.decode_budget(limits)

        def load(position: int, item: GVEInput) -> GVEItem:
            loaded = self.load(
                item,
                instruction,
                position=start + position,
                budget=budget,
                max_length=max_length,
                **options,
            )
            self.featurize(loaded, max_length, release_media=True)
            return loaded

        if len(inputs) < 2:
            items = [load(position, item) for position, item in enumerate(inputs)]
        else:  # decode side by side; the first failing input (in order) raises
            with worker_pool(min(len(inputs), os.cpu_count() or 1, 8)) as pool:
                items = list(pool.map(load, range(len(inputs)), inputs))
        return self.collate(items, max_length=max_length)

    def decode_budget(self, limits: "MediaLimits | Mapping[str, Any] | None" = None) -> DecodeBudget:
        """The limits of one call (`MediaLimits.resolve`) with its decoding budget, for `load(budget=...)`."""
        return DecodeBudget(MediaLimits.resolve(limits))

    def check_call(self, max_length: int | None, options: Mapping[str, Any]) -> int:
        """Check the per-call controls and `max_length` before any input is read; returns the maximum length.

        Raises `TypeError` for an unknown control and `ValueError` naming one out of its range.
        """
        unknown = sorted(set(options) - {*VIDEO_OPTIONS, *IMAGE_OPTIONS})
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; the options are {[*VIDEO_OPTIONS, *IMAGE_OPTIONS]}")
        for key, value in options.items():
            if value is not None and (reason := _control_problem(key, value)):
                raise ValueError(reason)
        if max_length is None:
            return self.embedding_config.max_length
        longest = self.embedding_config.text_config.max_position_embeddings
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= longest:
            raise ValueError(f"max_length must be an integer from 1 to {longest}, got {_show(max_length)}")
        return max_length

    def load(
        self,
        item: GVEInput,
        instruction: str | None = None,
        *,
        label: str | None = None,
        position: int = 0,
        limits: "MediaLimits | Mapping[str, Any] | None" = None,
        budget: "DecodeBudget | None" = None,
        max_length: int | None = None,
        **options,
    ) -> GVEItem:
        """Read one input: check it, decode its media with qwen-vl-utils and render its prompt.

        An input is one of:
            - a `str`: text, or an image/video path or URL when it ends in a media file extension;
            - a `PIL.Image.Image`;
            - a list or tuple of frames (PIL images, image paths or URLs, or HxWxC arrays): one video;
            - a dict with any of `text`, `image`, `video`, plus optionally `instruction`, the
              video/image controls for this item alone, and `video_start`/`video_end` (seconds: a
              part of a video file or URL, qwen-vl-utils' keys and frame rule).

        `position` is the input's index in the call and `label` its name in messages (default
        `inputs[<position>]`). `limits` bounds what reading its media may cost (see `prepare`), or
        `budget` (from `decode_budget`) when a call's inputs share one. `max_length` (default: the
        config's) lets a video too long for a prompt be refused before it is decoded, and a long text be
        cut before it is tokenized.

        Raises:
            GVEInputError: naming the input and the reason, for anything that cannot be embedded.
        """
        label = f"inputs[{position}]" if label is None else label

        def fail(reason: str, field: str | None = None) -> GVEInputError:
            return GVEInputError(label, reason, position=position, field=field)

        max_length = self.check_call(max_length, options)
        budget = budget or self.decode_budget(limits)
        content = self._parse(item, fail)
        config = self.embedding_config
        video_options = {**config.video_options(), **_pick(options, VIDEO_OPTIONS), **_pick(content, VIDEO_OPTIONS)}
        image_options = {**config.image_options(), **_renamed(options), **_renamed(content)}
        needed = self.video_processor.temporal_patch_size
        if "video" in content and video_options["max_frames"] < needed:
            raise fail(f"max_frames must be at least {needed} (the temporal patch size)", "max_frames")
        for kind, chosen in (("video", video_options), ("image", image_options)):
            if kind in content and chosen.get("min_pixels", 0) > chosen.get("max_pixels", float("inf")):
                prefix = "" if kind == "video" else "image_"
                raise fail(
                    f"{prefix}min_pixels ({chosen['min_pixels']}) exceeds {prefix}max_pixels ({chosen['max_pixels']})",
                    f"{prefix}min_pixels",
                )
        try:
            instruction = self._instruction(content.get("instruction", instruction), max_length)
        except ValueError as error:
            raise fail(str(error), "instruction") from None

        loaded = GVEItem(label=label, prompt="", position=position)
        parts = []
        try:
            if "video" in content:
                chosen = {**video_options, **_pick(content, TIME_RANGE)}
                video, fps = self._fetch_video(content["video"], chosen, budget, max_length)
                loaded.videos.append(video)
                loaded.video_fps.append(fps)
                parts.append({"type": "video"})
        except MediaError as error:
            raise fail(str(error), error.field or "video") from error.__cause__
        try:
            if "image" in content:
                loaded.images.append(self._fetch_image(content["image"], image_options, budget))
                parts.append({"type": "image"})
        except MediaError as error:
            raise fail(str(error), "image") from error.__cause__
        if "text" in content:
            parts.append({"type": "text", "text": self._clip_text(content["text"], max_length)})
        loaded.prompt = self._prompt(instruction, parts)
        return loaded

    def _instruction(self, instruction: str | None, max_length: int) -> str:
        """`instruction`, or the checkpoint's default when None; `ValueError` when it alone exceeds `max_length`."""
        if instruction is None:
            return self.embedding_config.default_instruction
        if self._clip_text(instruction, max_length) != instruction:
            raise ValueError(f"the instruction alone is longer than max_length={max_length} tokens")
        return instruction

    def _prompt(self, instruction: str, parts: list[dict]) -> str:
        """The embedding prompt of one input's content `parts` under `instruction`, ending with the pooling token."""
        conversation = [{"role": "system", "content": instruction}, {"role": "user", "content": parts}]
        return self.apply_chat_template(conversation, chat_template=self.embedding_chat_template)

    def _clip_text(self, text: str, max_length: int) -> str:
        """The part of a text that can reach a prompt of `max_length` tokens, found without tokenizing the rest.

        Tokenizing costs time in proportion to the text, and truncation keeps at most `max_length` tokens
        of it; so the text is cut after a prefix that holds `max_length` tokens plus a margin (tried at 4
        characters a token, then doubled until it holds them). The tokens before the cut's margin are the
        whole text's, so the truncated prompt is the same as without the cut (tests/test_hardening.py).
        """
        needed = max_length + CLIP_MARGIN_TOKENS
        size = 4 * needed
        while size < len(text):
            if len(self.tokenizer(text[:size], add_special_tokens=False)["input_ids"]) >= needed:
                return text[:size]
            size *= 2
        return text

    @staticmethod
    def _parse(item: GVEInput, fail: Callable[..., GVEInputError]) -> dict[str, Any]:
        """Normalise one input into a dict with `text`/`image`/`video` keys, checking types and controls."""
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
                raise fail(f"unknown key(s) {unknown}; allowed keys are {list(ITEM_KEYS)}")
            content = {key: value for key, value in item.items() if value is not None}
        else:
            raise fail(f"expected a str, a PIL image, a list of frames or a dict, got {type(item).__name__}")
        for key, allowed in (("text", (str,)), ("instruction", (str,)), ("image", (str, Image.Image))):
            if key in content and not isinstance(content[key], allowed):
                names = " or ".join("str" if kind is str else "PIL image" for kind in allowed)
                raise fail(f"{key!r} must be a {names}, got {type(content[key]).__name__}", key)
        if "video" in content and not isinstance(content["video"], (str, list, tuple)):
            raise fail(
                f"'video' must be a path, a URL or a list of frames, got {type(content['video']).__name__}", "video"
            )
        for key in ("text", "instruction", "image", "video"):
            if isinstance(content.get(key), str) and (problem := unicode_problem(content[key])):
                raise fail(f"{key!r} {problem}", key)
        for key in (*VIDEO_OPTIONS, *IMAGE_OPTIONS):
            if key in content and (problem := _control_problem(key, content[key])):
                raise fail(problem, key)
        if problem := time_range_problem(content):
            raise fail(*problem)
        if "text" in content and not content["text"].strip():
            del content["text"]
        if not any(content.get(key) not in (None, "", [], ()) for key in ("text", "image", "video")):
            raise fail("the input has no content; give text, an image or a video")
        return content

    def _fetch_image(self, source: Any, options: dict, budget: DecodeBudget) -> Image.Image:
        """Decode and size one image with qwen-vl-utils, its pixel count read from its header and charged first."""
        fetch_image = _optional_import("qwen_vl_utils", "qwen-vl-utils").fetch_image

        with contextlib.ExitStack() as stack:
            image = source
            if not isinstance(source, Image.Image):
                image = stack.enter_context(_local_media(source, "image", budget.limits))
                with _reading(source, "image"):
                    budget.spend(image_pixels(image, budget.limits) * IMAGE_PIXEL_COST)
            with _reading(source, "image"):
                return fetch_image({"image": image, **options})

    def _fetch_video(
        self, source: Any, options: dict, budget: DecodeBudget, max_length: int
    ) -> tuple[torch.Tensor, float]:
        """Decode and sample one video the way qwen-vl-utils does; returns its frames and their rate.

        What decoding will cost is known before it starts: the frames' size, how many are sampled and
        how many the decoder must go through to reach them. A video whose vision tokens alone exceed
        `max_length`, or whose decoding exceeds the limits or the call's budget, is refused first.
        """
        fetch_video = _optional_import("qwen_vl_utils", "qwen-vl-utils").fetch_video

        element = {"video": source, **options}
        with contextlib.ExitStack() as stack:
            if not isinstance(source, str):
                frames = self._frames(source, options["max_frames"], budget.limits, stack)
                with _reading("frames", "video"):
                    budget.spend(sum(pixels for _, pixels in frames) * IMAGE_PIXEL_COST)
                    # A frame list carries no timing: its frames are taken as sampled at `fps`.
                    element.update(video=[frame for frame, _ in frames], sample_fps=options["fps"])
                    return fetch_video(element, return_video_sample_fps=True)
            element["video"] = path = stack.enter_context(_local_media(source, "video", budget.limits))
            explain = functools.partial(self._video_failure, path)
            with _reading(source, "video", explain):
                plan = plan_video(element, budget.limits)
                self._check_plan(plan, max_length)
                budget.spend(plan.work)
                return read_video(plan)

    def _check_plan(self, plan: "VideoPlan", max_length: int) -> None:
        """Refuse a planned video whose frames would be sized to nothing, or whose tokens exceed `max_length`."""
        if not all(plan.size):  # qwen-vl-utils' sizing gives 0 when max_pixels is small for the aspect
            shortest = math.ceil(PATCH_PIXELS * max(plan.width, plan.height) / min(plan.width, plan.height))
            raise MediaError(
                f"frames of {plan.width}x{plan.height} would be resized to {plan.size[1]}x{plan.size[0]} "
                f"(max_pixels={plan.element.get('max_pixels')}); raise max_pixels to at least {shortest}"
            )
        tokens = self._video_tokens(plan)
        if tokens > max_length:
            raise MediaError(
                f"{len(plan.indices)} frames of {plan.size[1]}x{plan.size[0]} take {tokens} tokens, more than "
                f"max_length={max_length}; raise max_length, or lower fps, max_frames or max_pixels"
            )

    def load_segments(
        self,
        video: str,
        window: float | None = None,
        stride: float | None = None,
        instruction: str | None = None,
        *,
        label: str = "video",
        limits: "MediaLimits | Mapping[str, Any] | None" = None,
        max_length: int | None = None,
        **options,
    ) -> Iterator[GVEItem]:
        """Read a video file or URL once, as consecutive time windows; yields one loaded input per window, in order.

        Window k spans [k·stride, k·stride + window) seconds while that ends before the video does, and a last window
        ends at the video's end (`segment_spans`); `window` defaults to `max_frames / fps` (the span GVE samples at its
        full rate), `stride` to half of it (`segment_settings`). Each window's frames are those of the input `{"video":
        video, "video_start": start, "video_end": end}` (qwen-vl-utils' rule), so its embedding is that input's; each
        item's `span` is its (start, end). The video is downloaded and its stream read once, and its frames decoded in
        one pass: a decoded frame is resized for the windows that sample it, then dropped, and a window is yielded as
        soon as its last frame is read, so memory holds a few windows' frames at most, however long the video. Decoding
        work is charged to the limits window by window, each its share of the pass. The window and stride checks raise
        at the call; the video's, as the items are read.

        Raises:
            ValueError: a bad window, stride or control.
            GVEInputError: named by `label`, when the video cannot be read or a window cannot be embedded (its
                frames would exceed `max_length` or the decoding limits).
        """
        max_length = self.check_call(max_length, options)
        budget = self.decode_budget(limits)
        chosen = {**self.embedding_config.video_options(), **_pick(options, VIDEO_OPTIONS)}
        window, stride = segment_settings(window, stride, chosen)
        if not isinstance(video, str):
            raise GVEInputError(label, "segments need a video file or URL", position=0, field="video")
        prompt = self._prompt(self._instruction(instruction, max_length), [{"type": "video"}])
        return self._segments(video, window, stride, chosen, prompt, label, budget, max_length)

    def _segments(
        self, video: str, window: float, stride: float, options: dict, prompt: str, label: str, budget, max_length: int
    ) -> Iterator[GVEItem]:
        """The windows of `load_segments`, decoded in one pass (`_read_windows`)."""
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(_local_media(video, "video", budget.limits))
                with _reading(video, "video", functools.partial(self._video_failure, path)):
                    probe = probe_video(path, budget.limits)
                    spans = segment_spans(probe.duration, window, stride)
                    plans = []
                    for start, end in spans:
                        element = {"video": path, **options, "video_start": start, "video_end": end}
                        plans.append(plan_video(element, budget.limits, probe))
                        self._check_plan(plans[-1], max_length)
                    for (start, end), (frames, fps) in zip(spans, _read_windows(plans, budget), strict=True):
                        yield GVEItem(
                            f"{label} [{start:g} s, {end:g} s]",
                            prompt,
                            0,
                            videos=[frames],
                            video_fps=[fps],
                            span=(start, end),
                        )
            except MediaError as error:
                raise GVEInputError(label, str(error), position=0, field=error.field or "video") from error.__cause__

    def _video_tokens(self, plan: "VideoPlan") -> int:
        """The vision tokens of a planned video: its frames in temporal patches, each in merged patches."""
        video = self.video_processor
        patch = video.patch_size * video.merge_size
        return -(-len(plan.indices) // video.temporal_patch_size) * (plan.size[0] // patch) * (plan.size[1] // patch)

    @staticmethod
    def _frames(
        frames: Sequence[Any], max_frames: int, limits: MediaLimits, stack: contextlib.ExitStack
    ) -> list[tuple[Any, int]]:
        """Check a frame list and thin it to `max_frames` the way qwen-vl-utils samples a file; returns each
        kept frame (a PIL image or a local path) with its pixel count.

        qwen-vl-utils takes every frame of a list and fetches URLs itself with no timeout, so the list is
        thinned first, URLs are downloaded with `fetch_media`, and each frame's size is read before decoding.
        """
        for index, frame in enumerate(frames):
            if not isinstance(frame, (str, Image.Image)) and not (isinstance(frame, np.ndarray) and frame.ndim == 3):
                raise MediaError(
                    f"video frame {index} must be a PIL image, an image path or URL, or an HxWxC array, "
                    f"got {type(frame).__name__}"
                )
        indices = range(len(frames))
        if len(frames) > max_frames:
            count = max(2, int(max_frames) // 2 * 2)
            indices = torch.linspace(0, len(frames) - 1, count).round().long().tolist()
        checked = []
        for index in indices:
            frame = frames[index]
            if isinstance(frame, np.ndarray):
                frame = Image.fromarray(frame)
            if isinstance(frame, Image.Image):
                checked.append((frame, frame.width * frame.height))
                continue
            try:
                path = stack.enter_context(_local_media(frame, "image", limits))
            except MediaError as error:
                raise MediaError(f"video frame {index}: {error}") from None
            with _reading(f"video frame {index}", "image"):
                checked.append((path, image_pixels(path, limits)))
        return checked

    def _video_failure(self, source: str, error: Exception) -> str:
        """Why a video could not be read, checked directly with the active reader (`video_reader`).

        qwen-vl-utils falls back to `torchvision.io.read_video` when its reader fails; recent torchvision no
        longer has it, so the error it raises hides the real cause.
        """
        if os.path.getsize(source) == 0:
            return "the file is empty (0 bytes)"
        extension = os.path.splitext(source)[1].lower()
        hint = (
            "" if extension in VIDEO_EXTENSIONS else f"; {extension or 'no extension'!r} is not a video file extension"
        )
        try:
            reader = video_reader()
        except ValueError as reader_error:
            return str(reader_error)
        try:
            if reader == "torchcodec":
                frames = _torchcodec_decoder(source).metadata.num_frames
            else:
                frames = len(_optional_import("decord", "decord").VideoReader(source, num_threads=1))
        except Exception as probe_error:
            return f"not a readable video ({reader}: {_first_line(probe_error)}){hint}"
        needed = self.video_processor.temporal_patch_size
        if frames < needed:
            return f"the video has {frames} frame(s); at least {needed} are needed (the temporal patch size){hint}"
        return f"{type(error).__name__}: {error}{hint}"

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
                positions=[item.position],
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

    def _encode(
        self, images=None, text=None, videos=None, labels=None, positions=None, fps=None, **kwargs
    ) -> BatchFeature:
        if isinstance(text, str):
            text = [text]
        if text is not None:
            text = [prompt if prompt.endswith(self.pooling_token) else prompt + self.pooling_token for prompt in text]
            labels = labels or [f"text[{i}]" for i in range(len(text))]
            positions = positions or list(range(len(text)))
        videos, kwargs = self._with_video_metadata(videos, fps, kwargs)
        text_kwargs = dict(kwargs.pop("text_kwargs", None) or {})
        truncation = kwargs.pop("truncation", text_kwargs.pop("truncation", None))
        max_length = kwargs.pop("max_length", text_kwargs.pop("max_length", None))
        text_kwargs.setdefault("padding_side", kwargs.pop("padding_side", "left"))
        batch = super().__call__(images=images, text=text, videos=videos, text_kwargs=text_kwargs, **kwargs)
        if text is not None and truncation not in (None, False, "do_not_truncate"):
            batch = self._fit(batch, max_length or self.embedding_config.max_length, labels, positions, kwargs)
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

    def _fit(
        self, batch: BatchFeature, max_length: int, labels: list[str], positions: list, kwargs: dict
    ) -> BatchFeature:
        """Cut over-long prompts to `max_length`, removing text only, and pad them again."""
        # as lists: iterating tensors element by element took seconds per 100,000 tokens
        ids, masks = (_as_list(batch[key]) for key in ("input_ids", "attention_mask"))
        rows = [[token for token, keep in zip(*pair, strict=True) if keep] for pair in zip(ids, masks, strict=True)]
        if all(len(row) <= max_length for row in rows):
            return batch
        rows = [
            self._truncate(row, max_length, label, position) if len(row) > max_length else row
            for row, label, position in zip(rows, labels, positions, strict=True)
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

    def _truncate(self, ids: list[int], max_length: int, label: str, position: int | None = None) -> list[int]:
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
                label,
                f"the prompt needs {len(ids)} tokens, more than max_length={max_length}, and only "
                f"{tail - start} of them are text that can be cut; raise max_length, or lower the image/video "
                "pixel and frame limits",
                position=position,
            )
        warnings.warn(
            f"{label}: text truncated by {excess} tokens to fit max_length={max_length}", UserWarning, stacklevel=4
        )
        return ids[: tail - excess] + ids[tail:]


@contextlib.contextmanager
def _local_media(source: str, kind: str, limits: MediaLimits) -> Iterator[str]:
    """The local file a media string names: a path (checked), or a URL or data URI fetched to a temporary
    file (`fetch_media`) that is removed afterwards."""
    if source.startswith(URL_PREFIXES) or source[:5].lower() == "data:":
        folder = tempfile.mkdtemp(prefix=f"gve-{kind}-")
        try:
            yield fetch_media(source, kind, os.path.join(folder, kind), limits)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    path = _local_path(source)
    if not os.path.isfile(path):
        raise MediaError(f"{kind} file not found: {describe_source(source)}")
    yield path


@contextlib.contextmanager
def _reading(source: Any, kind: str, explain: Callable[[Exception], str] | None = None) -> Iterator[None]:
    """Name a media source in what goes wrong while it is read: a refusal by the limits (`MediaError`), or
    a failure of the reader, explained by `explain` when given."""
    try:
        yield
    except MediaError as error:
        raise MediaError(f"{kind} {describe_source(source)} refused: {error}", error.field) from None
    except Exception as error:
        reason = explain(error) if explain else str(error)
        raise MediaError(f"could not read {kind} {describe_source(source)}: {reason}") from error


def image_pixels(path: str, limits: MediaLimits) -> int:
    """An image file's pixel count, read from its header (nothing is decoded); raises `MediaError` above
    `max_image_pixels`. A few KB of PNG or WebP can declare gigapixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own check, at twice Image.MAX_IMAGE_PIXELS
        raise MediaError(
            f"it has more than the {2 * Image.MAX_IMAGE_PIXELS:,} pixels Pillow opens (a decompression bomb), more "
            f"than max_image_pixels={limits.max_image_pixels:,}"
        ) from None
    if width * height > limits.max_image_pixels:
        raise MediaError(
            f"it is {width}x{height} ({width * height:,} pixels), "
            f"more than max_image_pixels={limits.max_image_pixels:,}"
        )
    return width * height


VIDEO_READERS = ("torchcodec", "decord")
VIDEO_READER_VARIABLE = "GVE_VIDEO_READER"


@functools.cache
def video_reader() -> str:
    """The library GVE reads videos with: `torchcodec` when it loads here, else `decord`.

    `GVE_VIDEO_READER` (else qwen-vl-utils' own switch, `FORCE_QWENVL_VIDEO_READER`) forces either. qwen-vl-utils
    picks torchcodec whenever the package is installed, even when FFmpeg's shared libraries, which it decodes with,
    are missing (then every video fails); torchcodec is chosen here only when they load, and qwen-vl-utils is set
    to the same reader, so that its `fetch_video` and GVE's readers give the same frames. The two give identical
    frames on 8-bit videos; they differ on 10-bit colour and in the rate of variable-frame-rate clips
    (benchmarks/DECODERS.md), which is why the reader is part of an embedding's settings (`video_reader_identity`).
    Cached: call `video_reader.cache_clear()` after changing the variables.
    """
    forced = os.environ.get(VIDEO_READER_VARIABLE) or os.environ.get("FORCE_QWENVL_VIDEO_READER")
    if forced and forced not in VIDEO_READERS:
        raise ValueError(f"{VIDEO_READER_VARIABLE}={forced!r}: the video readers are {', '.join(VIDEO_READERS)}")
    if forced == "torchcodec" and not _torchcodec_ffmpeg():
        raise ValueError(
            f"{VIDEO_READER_VARIABLE}=torchcodec, but torchcodec or the FFmpeg shared libraries it decodes with "
            "(FFmpeg 4 to 9) do not load here: install them (Debian: apt-get install ffmpeg), or use decord"
        )
    reader = forced or ("torchcodec" if _torchcodec_ffmpeg() else "decord")
    try:
        vision = importlib.import_module("qwen_vl_utils.vision_process")
    except ImportError:
        return reader
    if vision.FORCE_QWENVL_VIDEO_READER != reader:
        vision.FORCE_QWENVL_VIDEO_READER = reader
        vision.get_video_reader_backend.cache_clear()
    return reader


def _torchcodec_ffmpeg() -> str | None:
    """The version of the FFmpeg libraries torchcodec decodes with; None when torchcodec or they do not load."""
    try:
        from torchcodec._core import get_ffmpeg_library_versions  # raises when FFmpeg's libraries are missing

        return str(get_ffmpeg_library_versions()["ffmpeg_version"])
    except Exception:
        return None


def video_reader_identity() -> dict[str, str]:
    """The video reader and the library versions that decide a video's frames, for an embedding's settings.

    decord's frames are decoded with PyAV here (`read_video`), with decord's frame count and rate.
    """
    from importlib.metadata import version

    reader = video_reader()
    if reader == "torchcodec":
        return {"reader": reader, "torchcodec": version("torchcodec"), "ffmpeg": _torchcodec_ffmpeg() or "missing"}
    return {"reader": reader, "decord": version("decord"), "av": version("av")}


def _torchcodec_decoder(path: str) -> Any:
    """A torchcodec decoder as qwen-vl-utils opens one (exact seek mode: every frame indexed from a scan of the
    file's packets), on one FFmpeg thread: `encode` already reads several videos at once in its worker threads."""
    decoders = _optional_import("torchcodec.decoders", "torchcodec")
    return decoders.VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")


@dataclass
class VideoPlan:
    """What reading a video will do, known before any frame is decoded (see `plan_video`)."""

    element: dict  # the qwen-vl-utils content element (a local path and the sampling controls)
    width: int  # of a decoded frame, from the stream header
    height: int
    indices: list[int]  # the frames sampled, as qwen_vl_utils.fetch_video picks them
    decoded: int  # frames the decoder goes through to reach them
    sample_fps: float  # the rate of the sampled frames
    reader: str  # `video_reader()` when it was planned
    timestamps: list[int] = field(default_factory=list)  # each frame's pts, in presentation order (PyAV)
    keyframes: list[int] = field(default_factory=list)  # indices of the keyframes, in presentation order

    @property
    def size(self) -> tuple[int, int]:
        """The (height, width) the sampled frames are resized to."""
        return _frame_size(self.element, self.height, self.width, len(self.indices))

    @property
    def work(self) -> int:
        """Decoding work in pixels: every decoded frame, and the sampled ones' conversion and resizing."""
        return (self.decoded + (SAMPLED_FRAME_COST - 1) * len(self.indices)) * self.width * self.height


@dataclass
class VideoProbe:
    """A video file's stream, as read without decoding a frame: what every plan of it starts from."""

    width: int  # of a decoded frame, from the stream header
    height: int
    frames: int  # the frame count and rate qwen-vl-utils samples with, as the reader reports them
    rate: float
    reader: str  # `video_reader()` when it was probed
    timestamps: list[int] = field(default_factory=list)  # each frame's pts, in presentation order (PyAV)
    keyframes: list[int] = field(default_factory=list)  # indices of the keyframes, in presentation order

    @property
    def duration(self) -> float:
        """Seconds, as qwen-vl-utils counts them for a time range: frames / rate."""
        return self.frames / self.rate


def probe_video(path: str, limits: MediaLimits) -> VideoProbe:
    """Read a video file's stream header and packet index, without decoding a frame.

    The frame count and rate are those qwen-vl-utils samples with under the active reader (`video_reader`):
    decord's count of packets and average rate, or torchcodec's count and average rate from its scan of the
    packets (on a variable-frame-rate clip the two rates differ, benchmarks/DECODERS.md). The packets'
    timestamps and keyframe flags come from PyAV's demuxer, which decodes nothing. Raises `MediaError` when the
    frames are larger than `max_video_frame_pixels` (before anything but the header is read); errors of the
    readers (an unreadable file) propagate.
    """
    reader = video_reader()
    with _optional_import("av", "av").open(path) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_video_frame_pixels:
            raise MediaError(
                f"its frames are {width}x{height} ({width * height:,} pixels), more than "
                f"max_video_frame_pixels={limits.max_video_frame_pixels:,}"
            )
        packets = [(packet.pts, packet.is_keyframe) for packet in container.demux(stream) if packet.size]
    if any(pts is None for pts, _ in packets):
        raise ValueError("its packets carry no timestamps")
    timestamps = sorted(pts for pts, _ in packets)
    keyframes = [bisect.bisect_left(timestamps, pts) for pts in sorted(pts for pts, key in packets if key)]
    if reader == "torchcodec":
        metadata = _torchcodec_decoder(path).metadata
        frames, rate = metadata.num_frames, metadata.average_fps
    else:
        # decord's average rate is the header's, as PyAV reads it, but older FFmpeg can differ on odd files
        frames, rate = len(packets), _optional_import("decord", "decord").VideoReader(path, num_threads=1).get_avg_fps()
    return VideoProbe(width, height, frames, rate, reader, timestamps, keyframes)


def plan_video(element: dict, limits: MediaLimits, probe: VideoProbe | None = None) -> VideoPlan:
    """Plan the sampling of a video file (`element`: a local path, the sampling controls and any time range)
    without decoding a frame: qwen-vl-utils' frame range, count and indices on `probe` (read when not given).

    Raises `MediaError` for a time range the video cannot hold; errors of the readers (too few frames) propagate.
    """
    vision = _optional_import("qwen_vl_utils", "qwen-vl-utils").vision_process
    probe = probe or probe_video(element["video"], limits)
    _check_time_range(element, probe.frames, probe.rate)
    start, end, total = vision.calculate_video_frame_range(element, probe.frames, probe.rate)
    count = vision.smart_nframes(element, total_frames=total, video_fps=probe.rate)
    indices = torch.linspace(start, end, count).round().long().tolist()
    return VideoPlan(
        element,
        probe.width,
        probe.height,
        indices,
        _decoded_frames(indices, probe.keyframes),
        count / max(total, 1e-6) * probe.rate,
        probe.reader,
        probe.timestamps,
        probe.keyframes,
    )


def _decoded_frames(indices: Sequence[int], keyframes: Sequence[int]) -> int:
    """How many frames a decoder decodes to return `indices` in order.

    A frame ahead of the last one, in the same run from a keyframe, is reached by decoding forward from
    there; any other from the keyframe before it (`_pyav_frames` and torchcodec do so; decord too, measured, and
    it seeks again for a repeated frame).
    """
    return sum(_decode_steps(indices, keyframes))


def _decode_steps(indices: Sequence[int], keyframes: Sequence[int]) -> list[int]:
    """The frames decoded to reach each of `indices`, in order (see `_decoded_frames`)."""
    keyframes = sorted(keyframes) or [0]
    position, steps = -1, []
    for index in indices:
        key = keyframes[max(bisect.bisect_right(keyframes, index) - 1, 0)]
        steps.append(index - position if key <= position < index else index - key + 1)
        position = index
    return steps


def segment_settings(
    window: float | None, stride: float | None, video_options: Mapping[str, Any]
) -> tuple[float, float]:
    """The (window, stride) in seconds that segments use: checked, with the defaults filled in.

    `window` defaults to `max_frames / fps` of `video_options` (the span GVE samples at its full rate), `stride`
    to `SEGMENT_STRIDE` of the window.
    """
    window = video_options["max_frames"] / video_options["fps"] if window is None else window
    for key, value in (("window", window), ("stride", stride)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
        ):
            raise ValueError(f"{key} must be a finite number of seconds above 0, got {_show(value)}")
    stride = window * SEGMENT_STRIDE if stride is None else stride
    if stride > window:
        raise ValueError(f"stride ({stride:g} s) must be at most window ({window:g} s): a longer one skips parts")
    return float(window), float(stride)


def segment_spans(duration: float, window: float, stride: float) -> list[tuple[float, float]]:
    """The time windows (start, end) in seconds that cover a video of `duration` seconds.

    [k·stride, k·stride + window) while that ends before the video does, then one window that ends at the
    video's end; a video no longer than a window is one span, the whole video.
    """
    if duration <= window:
        return [(0.0, duration)]
    spans = []
    while len(spans) * stride + window < duration:
        start = round(len(spans) * stride, 6)
        spans.append((start, round(start + window, 6)))
    return [*spans, (round(duration - window, 6), duration)]


def _read_windows(plans: Sequence[VideoPlan], budget: DecodeBudget) -> Iterator[tuple[torch.Tensor, float]]:
    """Each planned window's frames and rate, as `read_video` gives them, decoding the video in one pass.

    The windows' frames are decoded once, in order (`_pyav_frames` over their union); each decoded frame is
    resized to the size of each window that samples it, in worker threads (an antialiased resize costs more than
    decoding a frame), and dropped; a window is yielded when its last frame is resized. Each window is charged,
    before its frames are decoded, the decoding its frames add to the pass.
    """
    first = plans[0]
    union = sorted({index for plan in plans for index in plan.indices})
    decoded = [0, *itertools.accumulate(_decode_steps(union, first.keyframes))]  # before each frame of the pass
    charged = 0  # frames of the pass whose decoding was charged
    pixels = first.width * first.height
    waiting = {index: [] for index in union}  # for each frame to come, the windows that sample it
    for number, plan in enumerate(plans):
        for index in plan.indices:
            waiting[index].append(number)
    resized: dict[int, list] = {number: [] for number in range(len(plans))}  # each window's frames, as futures
    position, frames = iter(union), _sampled_frames(dataclasses.replace(first, indices=union))
    # resizes not known to be done: each holds a full-size frame, so a few at most
    in_flight: collections.deque = collections.deque()
    with contextlib.closing(frames), worker_pool() as pool:
        for number, plan in enumerate(plans):
            through = bisect.bisect_right(union, plan.indices[-1])
            work = decoded[max(through, charged)] - decoded[charged]
            budget.spend((work + (SAMPLED_FRAME_COST - 1) * len(plan.indices)) * pixels)
            charged = max(charged, through)
            while len(resized[number]) < len(plan.indices):
                index, frame = next(position), next(frames)
                for owner in waiting.pop(index):
                    count = len(plans[owner].indices)
                    size = _frame_size(plans[owner].element, frame.shape[0], frame.shape[1], count)
                    resized[owner].append(pool.submit(_resize_frame, frame, size))
                    in_flight.append(resized[owner][-1])
                del frame
                while len(in_flight) > 2 * worker_count():
                    in_flight.popleft().result()
            yield torch.cat([future.result() for future in resized.pop(number)]).float(), plan.sample_fps


def read_video(plan: VideoPlan) -> tuple[torch.Tensor, float]:
    """`qwen_vl_utils.fetch_video(element, return_video_sample_fps=True)` for a planned video file.

    The frames qwen-vl-utils' reader would pick are decoded one at a time on one thread (`_sampled_frames`) and
    resized at once, so that memory holds one full-size frame plus the resized ones; qwen-vl-utils' readers
    decode every sampled frame at full size first, and decord's decoding thread runs ahead of the frames asked
    for, converting every frame it reaches (a 30 KB 4K video read frame by frame took over 1 GB; read whole,
    24 GB). One thread per video: `encode` already decodes several videos at once in its worker threads, and
    there one thread per video reads about 1.5 times more videos per CPU second (benchmarks/RESULTS.md).

    The frames equal `fetch_video`'s under the same reader, element for element, for 8-bit H.264 and VP9
    (tests/test_inputs.py, with B-frames, odd sizes, full range and 4:4:4). With decord they are the right frames
    where decord's are not: after a seek decord returns neighbouring frames in HEVC with reordered frames and
    damaged ones in MPEG-4 Part 2, and its FFmpeg converts pictures above 8 bits otherwise (SECURITY.md).
    """
    resized, size = [], None
    for frame in _sampled_frames(plan):
        size = size or _frame_size(plan.element, frame.shape[0], frame.shape[1], len(plan.indices))
        resized.append(_resize_frame(frame, size))
        del frame
    return torch.cat(resized).float(), plan.sample_fps


def _sampled_frames(plan: VideoPlan) -> Iterator[np.ndarray]:
    """The sampled frames of a video as HxWx3 RGB arrays, one at a time, with the reader it was planned with."""
    return _torchcodec_frames(plan) if plan.reader == "torchcodec" else _pyav_frames(plan)


def _torchcodec_frames(plan: VideoPlan) -> Iterator[np.ndarray]:
    """torchcodec's frames, as qwen-vl-utils' torchcodec reader decodes them, but one at a time on one thread.

    torchcodec decodes forward to a frame ahead of the last one in the same run from a keyframe, and seeks to
    the keyframe before it otherwise (exact mode), as `_decoded_frames` counts.
    """
    decoder = _torchcodec_decoder(plan.element["video"])
    for index in plan.indices:
        yield decoder.get_frame_at(index).data.numpy()


def _pyav_frames(plan: VideoPlan) -> Iterator[np.ndarray]:
    """decord's frames, decoded one at a time with PyAV on one thread (see `read_video`).

    Frames are counted in presentation order as decord counts them; a frame is reached by decoding forward
    from the last one when they share a run from a keyframe, else by seeking to the keyframe before it.
    """
    av = _optional_import("av", "av")
    with av.open(plan.element["video"]) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        to_rgb = _rgb_converter(av, stream)
        position, last, decoded = -1, None, iter(())
        for index in plan.indices:
            if index != position:
                key = plan.keyframes[max(bisect.bisect_right(plan.keyframes, index) - 1, 0)]
                if not key <= position < index:
                    container.seek(plan.timestamps[key], stream=stream, backward=True, any_frame=False)
                    decoded, position = container.decode(stream), None
                for frame in decoded:
                    if position is None:  # the first frame after a seek: where the seek landed
                        position = bisect.bisect_left(plan.timestamps, frame.pts)
                    else:
                        position += 1
                    if position == index:
                        last = to_rgb(frame)
                        break
                else:
                    raise ValueError(f"the video ended before frame {index} of {len(plan.timestamps)}")
            yield last


def _rgb_converter(av: Any, stream: Any) -> Callable[[Any], np.ndarray]:
    """A decoded frame to an RGB array through decord's filter (`scale` to the stream's size, to rgb24)."""
    graph = av.filter.Graph()
    context = stream.codec_context
    chain = [graph.add_buffer(template=stream), graph.add("scale", f"{context.width}:{context.height}")]
    chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
    for source, target in zip(chain, chain[1:], strict=False):
        source.link_to(target)
    graph.configure()

    def convert(frame: Any) -> np.ndarray:
        graph.push(frame)
        return graph.pull().to_ndarray()

    return convert


def _resize_frame(frame: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """One HxWx3 uint8 frame resized as fetch_video resizes a video (antialiased bicubic), as 1x3xhxw uint8.

    One colour plane at a time: torchvision resizes a uint8 tensor through a float32 copy, 12 bytes a pixel for
    a whole frame (400 MB at 8K), and planes are resized independently, so the result is the same. Each is made
    contiguous first: torch's antialiased resize runs 30% faster on NCHW planes of 448 pixels than on the strided
    view of an NHWC array, with the same result.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    planes = []
    for channel in range(frame.shape[2]):
        plane = torch.from_numpy(frame[..., channel]).contiguous()[None, None]
        planes.append(TF.resize(plane, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True))
    return torch.cat(planes, dim=1)


def _frame_size(element: dict, height: int, width: int, count: int) -> tuple[int, int]:
    """`fetch_video`'s size for the frames of a decoded video, with its constants."""
    vision = _optional_import("qwen_vl_utils", "qwen-vl-utils").vision_process
    factor = 14 * vision.SPATIAL_MERGE_SIZE  # fetch_video's default patch size, the one this processor uses
    min_pixels = element.get("min_pixels", vision.VIDEO_MIN_TOKEN_NUM * factor * factor)
    total_pixels = element.get("total_pixels", vision.MODEL_SEQ_LEN * factor * factor * 0.9)
    limit = min(vision.VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / count * vision.FRAME_FACTOR)
    max_pixels = min(element.get("max_pixels", float("inf")), max(limit, int(min_pixels * 1.05)))
    return vision.smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


# Internal networks: what an input's URL may not reach unless `allow_private_hosts` is set. Python's
# `is_global` differs between versions and counts NAT64, 6to4 and IPv4-compatible forms as global, so the
# list is explicit; addresses that carry an IPv4 address are judged by it (`_embedded_ipv4`).
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata services)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "64:ff9b:1::/48",  # local-use NAT64
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")
_CHUNK_BYTES = 1 << 16


def is_internal_address(address: "str | ipaddress.IPv4Address | ipaddress.IPv6Address") -> bool:
    """Whether an address is internal: loopback, private, link-local, unique-local, carrier-grade NAT,
    multicast, reserved or unspecified, or an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 form of one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return is_internal_address(embedded)
    return any(ip in network for network in INTERNAL_NETWORKS if network.version == ip.version)


def _embedded_ipv4(ip: "ipaddress.IPv4Address | ipaddress.IPv6Address") -> "ipaddress.IPv4Address | None":
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4 or IPv4-compatible), if any."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None or ip.sixtofour is not None:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class _Target:
    """A URL as the request will use it, parsed once: nothing is parsed again on the way to the socket."""

    url: str
    scheme: str
    host: str  # lower-case ASCII name, or an IP address
    port: int
    path: str  # the request target: path and query, percent-encoded


def parse_url(url: str, limits: MediaLimits) -> _Target:
    """Check a media URL and split it into what the connection will use; raises `MediaError` with the reason.

    Refused: schemes outside `allowed_schemes`, user info, backslashes, whitespace and control characters,
    bad ports, and host names that parsers read differently (numeric forms other than a canonical IPv4
    or IPv6 address, empty labels, percent-escapes). The request is rebuilt from these parts, so what was
    checked is what is asked for.
    """
    shown = describe_source(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in limits.allowed_schemes:
        allowed = ", ".join(limits.allowed_schemes)
        raise MediaError(f"URL scheme {scheme!r} is not allowed (allowed: {allowed})")
    if "\\" in url or any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise MediaError(f"the URL {shown} has backslashes, whitespace or control characters, which are not accepted")
    try:
        parts = urlsplit(url)
        port = parts.port
        if port == 0:
            raise ValueError("Port 0 is not a port to connect to")
    except ValueError as error:
        raise MediaError(f"malformed URL {shown}: {error}") from None
    if "@" in parts.netloc:
        raise MediaError(f"the URL {shown} has user info (before '@'), which is not accepted")
    host = parts.hostname or ""
    if not host:
        raise MediaError(f"the URL {shown} has no host")
    if parts.netloc.startswith("["):
        try:
            canonical = str(ipaddress.IPv6Address(host)) if "%" not in host else ""
        except ValueError:
            canonical = ""
        if canonical != host:
            raise MediaError(f"the URL {shown} has a malformed or non-canonical IPv6 host [{host}]")
    else:
        try:
            canonical = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
        except UnicodeError:
            raise MediaError(f"the URL {shown} has a host name that is not valid ({host!r})") from None
        last = canonical.rsplit(".", 1)[-1]
        if last.isdigit() or last.startswith("0x"):  # an IPv4 address, in some form
            try:
                canonical = str(ipaddress.IPv4Address(canonical))
            except ValueError:
                raise MediaError(f"the URL {shown} has a non-canonical IPv4 host {host!r}") from None
            if canonical != host:
                raise MediaError(f"the URL {shown} has a non-canonical IPv4 host {host!r}")
        elif not _HOST_NAME.fullmatch(canonical):
            raise MediaError(f"the URL {shown} has a host name that is not valid ({host!r})")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return _Target(url, scheme, canonical, port or (443 if scheme == "https" else 80), path)


def fetch_media(source: str, kind: str, destination: str, limits: MediaLimits) -> str:
    """Write the image or video that `source` names into a file, and return the file's path.

    This is the only code that downloads media, for every entry point. `source` is an http(s) URL or a
    base64 data URI (`data:<kind>/<type>;base64,...`); the file is `destination` plus a suffix from the
    URL or the media type. A URL is parsed once (`parse_url`), its host resolved once, every address
    checked (unless `allow_private_hosts`) and the connection made to a checked address, at the first
    request and at each redirect (at most `max_redirects`); the whole download, redirects included, has
    `download_timeout` seconds, and at most `max_<kind>_bytes` are read. Raises `MediaError`.
    """
    cap = limits.max_video_bytes if kind == "video" else limits.max_image_bytes
    if source[:5].lower() == "data:":
        mime, payload = parse_data_uri(source, kind)
        payload = "".join(payload.split())
        if len(payload) // 4 * 3 - payload[-2:].count("=") > cap:
            raise MediaError(f"data URI exceeds {cap} bytes")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MediaError(f"the data URI is not valid base64 ({error})") from None
        path = destination + MIME_SUFFIXES.get(mime, DEFAULT_SUFFIXES[kind])
        with open(path, "wb") as file:
            file.write(data)
        return path
    return _download(parse_url(source, limits), kind, destination, cap, limits)


def parse_data_uri(source: str, kind: str) -> tuple[str, str]:
    """Split a base64 data URI into its media type and payload, checking that it holds a `kind`."""
    header, comma, payload = source[5:].partition(",")
    if not comma:
        raise MediaError(f"malformed data URI (expected data:{kind}/<type>;base64,<data>)")
    mime, *options = (part.strip().lower() for part in header.split(";"))
    if "base64" not in options:
        raise MediaError(f"only base64 data URIs are accepted (data:{kind}/<type>;base64,<data>)")
    if not mime.startswith(f"{kind}/"):
        raise MediaError(f"expected a data:{kind}/... URI, got media type {mime or 'none'!r}")
    return mime, payload


def _download(target: _Target, kind: str, destination: str, cap: int, limits: MediaLimits) -> str:
    """GET a checked URL into a file, following checked redirects, within the deadline and the size cap.

    Why not `requests`: it resolves the host again when it connects (a second answer can point elsewhere),
    parses the URL with its own rules, uses proxies from the environment and decompresses bodies beyond
    any cap. Here the connection goes to the address that was checked, and the body is read as sent.
    """
    shown = describe_source(target.url)
    deadline = time.monotonic() + limits.download_timeout
    connection = None
    try:
        for _ in range(limits.max_redirects + 1):
            connection = _request(target, deadline, limits)
            response = connection.response
            location = response.getheader("location") if response.status in (301, 302, 303, 307, 308) else None
            if location is None:
                break
            connection.finish()
            redirected = urljoin(target.url, location.strip())
            scheme = redirected.split(":", 1)[0].lower()
            if scheme not in limits.allowed_schemes:
                allowed = ", ".join(limits.allowed_schemes)
                raise MediaError(f"redirected to URL scheme {scheme!r}, which is not allowed ({allowed})")
            target = parse_url(redirected, limits)
        else:
            raise MediaError(f"could not download {shown}: more than {limits.max_redirects} redirects")
        if response.status >= 300:
            raise MediaError(f"could not download {shown}: {response.status} {(response.reason or '')[:80]}".rstrip())
        declared = response.getheader("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise MediaError(f"download exceeds {cap} bytes ({declared} bytes declared)")
        suffix = os.path.splitext(target.path.split("?", 1)[0])[1].lower()
        if suffix not in (VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS):
            mime = (response.getheader("content-type") or "").split(";")[0].strip().lower()
            suffix = MIME_SUFFIXES.get(mime, DEFAULT_SUFFIXES[kind])
        path, size = destination + suffix, 0
        with open(path, "wb") as file:
            while chunk := response.read1(_CHUNK_BYTES):
                size += len(chunk)
                if size > cap:
                    raise MediaError(f"download exceeds {cap} bytes")
                file.write(chunk)
        if time.monotonic() >= deadline:  # the watchdog ended the body
            raise TimeoutError
        if declared.isdigit() and size < int(declared):
            raise MediaError(f"could not download {shown}: the connection closed after {size} of {declared} bytes")
        return path
    except (OSError, http.client.HTTPException) as error:
        late = time.monotonic() >= deadline or isinstance(error, TimeoutError)
        reason = f"timed out after {limits.download_timeout:g} s" if late else _first_line(error)
        raise MediaError(f"could not download {shown}: {reason}") from None
    finally:
        if connection is not None:
            connection.finish()


def _request(target: _Target, deadline: float, limits: MediaLimits) -> "_PinnedConnection":
    """Send one GET to a checked address of `target`'s host; returns the connection, its response's headers read."""
    addresses = _resolve(target, deadline, limits)
    for address in addresses:
        connection = _PinnedConnection(target, address, deadline)
        try:
            connection.connect()
            break
        except OSError:
            connection.finish()
            if address == addresses[-1] or time.monotonic() >= deadline:
                raise
    try:
        connection.putrequest("GET", target.path, skip_accept_encoding=True)
        for header, value in (("User-Agent", "gve-fetch"), ("Accept-Encoding", "identity"), ("Connection", "close")):
            connection.putheader(header, value)
        connection.endheaders()
        connection.response = connection.getresponse()
        return connection
    except BaseException:
        connection.finish()
        raise


def _resolve(target: _Target, deadline: float, limits: MediaLimits) -> list[str]:
    """The addresses to connect to for `target`: resolved once (within the deadline), each one checked."""
    try:
        addresses = [str(ipaddress.ip_address(target.host))]
    except ValueError:
        lookup = _resolver().submit(socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM)
        try:
            answers = lookup.result(timeout=max(deadline - time.monotonic(), 0.001))
        except FutureTimeout:
            raise TimeoutError from None
        except (OSError, UnicodeError) as error:
            raise MediaError(f"could not resolve the host of {describe_source(target.url)} ({error})") from None
        addresses = list(dict.fromkeys(answer[4][0] for answer in answers))
    if not limits.allow_private_hosts:
        for address in addresses:
            if is_internal_address(address):
                raise MediaError(
                    f"the host of {describe_source(target.url)} is an internal address ({address}); downloads from "
                    "loopback, private and link-local addresses are off (allow_private_hosts)"
                )
    return addresses


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTP(S) connection to one given address, with the URL's host name for `Host`, SNI and certificates.

    A watchdog shuts its socket at the deadline, so that a server sending a byte now and then cannot hold a
    download past it (a socket timeout bounds each read, not their sum). `finish` ends it all.
    """

    def __init__(self, target: _Target, address: str, deadline: float) -> None:
        tls = target.scheme == "https"
        timeout = max(deadline - time.monotonic(), 0.001)
        # the shared context for http too: HTTPSConnection builds a new one (loading the CA roots, ~20 ms) when given
        # none, and a plain connection never uses it
        super().__init__(target.host, target.port, timeout=timeout, context=_tls_context())
        self.address, self.tls, self.socket, self.response = address, tls, None, None
        self.default_port = 443 if tls else 80  # the Host header leaves out the scheme's own port
        self.watchdog = threading.Timer(timeout, self.abort)
        self.watchdog.daemon = True
        self.watchdog.start()

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.socket = self._context.wrap_socket(sock, server_hostname=self.host) if self.tls else sock

    def abort(self) -> None:
        """Shut the socket from the watchdog's thread: a blocked read returns at once. (http.client lets go of
        `sock` once a response will close the connection, so the socket is kept here.)"""
        with contextlib.suppress(OSError, AttributeError):
            self.socket.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self.watchdog.cancel()
        if self.response is not None:
            self.response.close()
        self.close()


@functools.cache
def _resolver() -> ThreadPoolExecutor:
    """Threads for name lookups, so that a lookup is bounded by the download's deadline (getaddrinfo has none)."""
    return ThreadPoolExecutor(4, "gve-resolve")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificate checks against certifi's roots when installed (as requests does), else the system's; made once
    (loading the roots takes milliseconds) and shared, as an SSLContext may be."""
    try:
        return ssl.create_default_context(cafile=importlib.import_module("certifi").where())
    except ImportError:
        return ssl.create_default_context()


def _optional_import(module: str, package: str):
    """Import a media library, with an install hint when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"Reading images and videos needs {package}: pip install {package}") from error


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _as_list(value: Any) -> list:
    return value.tolist() if hasattr(value, "tolist") else list(value)


def time_range_problem(content: dict) -> tuple[str, str] | None:
    """Why an input's time range is refused, with the key at fault, or None (also when it has none).

    Each bound is a finite number of seconds, at least 0, on a video file or URL (a list of frames has no
    timing), and the end comes after the start. Where the range meets the video is checked once its frame
    count and rate are read (`plan_video`).
    """
    chosen = {key: content[key] for key in TIME_RANGE if key in content}
    for key, value in chosen.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            return f"{key} must be a finite number of seconds, at least 0, got {_show(value)}", key
    if chosen and not isinstance(content.get("video"), str):
        what = "the input has no video" if "video" not in content else "a list of frames has no timing"
        return f"{next(iter(chosen))} needs a video file or URL; {what}", next(iter(chosen))
    if len(chosen) == 2 and chosen["video_end"] <= chosen["video_start"]:
        return f"video_end ({chosen['video_end']:g} s) must be after video_start ({chosen['video_start']:g} s)", (
            "video_end"
        )
    return None


def _check_time_range(element: dict, frames: int, rate: float) -> None:
    """Refuse a time range that starts at or after the video's end, ends more than a frame after it, or holds
    fewer than two frames by qwen-vl-utils' rule (it would clamp the first two, and fail on the last)."""
    start, end = element.get("video_start"), element.get("video_end")
    if start is None and end is None:
        return
    duration = frames / rate
    if start is not None and start >= duration:
        raise MediaError(f"video_start={start:g} s is at or after the video's end ({duration:.3f} s)", "video_start")
    if end is not None and end > duration + 1 / rate:
        raise MediaError(f"video_end={end:g} s is after the video's end ({duration:.3f} s)", "video_end")
    first = math.ceil((start or 0.0) * rate)
    last = min(math.floor(min(end, duration) * rate), frames - 1) if end is not None else frames - 1
    if last <= first:
        shown = f"{start or 0:g}-{end if end is not None else duration:g} s"
        raise MediaError(f"the range {shown} holds fewer than 2 frames at {rate:g} fps", "video_end")


def _control_problem(key: str, value: Any) -> str | None:
    """Why a control's value is refused (`CONTROL_RANGES`), or None when it is within its range."""
    low, high = CONTROL_RANGES[key]
    if key in INTEGER_CONTROLS:
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral or not low <= value <= high:
            return f"{key} must be an integer from {low} to {high}, got {_show(value)}"
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        return f"{key} must be a number above {low:g} and at most {high:g}, got {_show(value)}"
    return None


def unicode_problem(text: str) -> str | None:
    """Why a string cannot be tokenized or used as a path (a lone surrogate is not Unicode), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"is not valid Unicode (a lone surrogate {text[error.start]!r} at character {error.start})"
    return None


def _show(value: Any) -> str:
    """A value for a message, shortened."""
    if isinstance(value, int) and abs(value) >= 10**30:  # repr fails beyond 4300 digits
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pick(options: dict, keys: Sequence[str]) -> dict:
    return {key: options[key] for key in keys if options.get(key) is not None}


def _renamed(options: dict) -> dict:
    """Image controls under the names qwen-vl-utils' `fetch_image` expects."""
    return {name: options[key] for key, name in IMAGE_OPTIONS.items() if options.get(key) is not None}


__all__ = ["GVEProcessor", "GVEInputError", "GVEItem"]
