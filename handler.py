# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""Hugging Face Inference Endpoints handler for GVE: embeddings and similarities of text, images and videos.

Requests are JSON, in the Hub's task schemas:

* feature-extraction: `{"inputs": ITEM | [ITEM, ...], "parameters": {...}}` returns `number[][]`, one
  L2-normalised embedding per input, in order; always two-dimensional, also for a single item.
* sentence-similarity: `{"inputs": {"source_sentence": ITEM, "sentences": [ITEM, ...]}, "parameters": {...}}`
  returns `number[]`, the cosine similarity of the source with each sentence, in order.

An ITEM is a string, which is always text (never a file name or a URL), or an object with any of `text`, `image`
and `video`, e.g. `{"text": "the same scene at night", "image": "https://example.com/photo.jpg"}`; with a video,
`video_start` and `video_end` (seconds) embed that part of it, e.g. `{"video": URL, "video_start": 12.5,
"video_end": 20}`. An image or a
video is an `http(s)` URL, which the handler downloads, or a base64 data URI (`data:image/png;base64,...`,
`data:video/mp4;base64,...`); an image may also be bare base64, as the Hub's image widgets send it. Local paths
and `file://` URLs are refused. A `null` value is the same as leaving the field out.

`parameters` (optional; an unknown name is an error; unset controls take the checkpoint's `config.json` defaults):

| parameter | type | meaning (allowed values) |
| --- | --- | --- |
| `instruction` | string | system instruction (at most `max_text_chars` characters) |
| `fps` | number | frames sampled per second of video (above 0, at most `max_fps`) |
| `max_frames` | integer | most frames per video (2 to `max_frames`) |
| `min_pixels`, `max_pixels` | integer | pixels per video frame after resizing (784 to `max_pixels`) |
| `total_pixels` | integer | pixel budget of a whole video (784 to `max_frames` × `max_pixels`) |
| `image_min_pixels`, `image_max_pixels` | integer | pixels per image after resizing (784 to `max_pixels`) |

In feature-extraction the instruction applies to every input. In sentence-similarity it applies to the source
(the query) only; the sentences (the documents) keep the model's default instruction.

Limits (`HandlerLimits`, the library's `MediaLimits` with a public endpoint's defaults and the request's own
bounds): each is a keyword argument of `EndpointHandler`, else its environment variable, else the default.
`allowed_schemes` is a subset of http and https (comma-separated in the variable). Downloads and decoding go
through the remote code's one fetcher and video planner (`processing_gve.fetch_media`, `plan_video`): hosts are
resolved once and every address checked, and a video's decoding work is known from its header and keyframes
before a frame is decoded. SECURITY.md has the threat model and what these defaults bound.

| limit | environment variable | default | what it bounds |
| --- | --- | --- | --- |
| `max_inputs` | `GVE_MAX_INPUTS` | 32 | inputs per request (sentence-similarity: sentences) |
| `max_payload_bytes` | `GVE_MAX_PAYLOAD_BYTES` | 20000000 | the request, serialised as JSON |
| `allowed_schemes` | `GVE_ALLOWED_SCHEMES` | `http,https` | URL schemes media are downloaded from |
| `download_timeout` | `GVE_DOWNLOAD_TIMEOUT` | 10 | seconds for one download, in all |
| `max_image_bytes` | `GVE_MAX_IMAGE_BYTES` | 20000000 | one image, downloaded or from a data URI |
| `max_video_bytes` | `GVE_MAX_VIDEO_BYTES` | 200000000 | one video, downloaded or from a data URI |
| `max_text_chars` | `GVE_MAX_TEXT_CHARS` | 20000 | characters of one text, and of the instruction |
| `max_fps` | `GVE_MAX_FPS` | 8 | the `fps` parameter |
| `max_frames` | `GVE_MAX_FRAMES` | 64 | the `max_frames` parameter |
| `max_pixels` | `GVE_MAX_PIXELS` | 1003520 (1280·28·28) | `*_pixels` parameters (`total_pixels`: × max_frames) |
| `allow_private_hosts` | `GVE_ALLOW_PRIVATE_HOSTS` | False | downloads from internal hosts (loopback, private...) |
| `max_redirects` | `GVE_MAX_REDIRECTS` | 5 | redirects followed by one download |
| `max_image_pixels` | `GVE_MAX_IMAGE_PIXELS` | 12500000 | pixels of one image, read from its header before decoding |
| `max_video_frame_pixels` | `GVE_MAX_VIDEO_FRAME_PIXELS` | 9437184 (4096·2304) | pixels of one video frame (header) |
| `max_decode_pixels` | `GVE_MAX_DECODE_PIXELS` | 4000000000 | decoding work of one image or video (below) |
| `max_call_decode_pixels` | `GVE_MAX_CALL_DECODE_PIXELS` | 5000000000 | decoding work of all media of one request |
| `batch_size` | `GVE_BATCH_SIZE` | 2 | inputs per forward pass; 3 times as many are held decoded (raise on a GPU) |
| `max_batch_tokens` | `GVE_MAX_BATCH_TOKENS` | 8192 | tokens per forward pass, padding included (≥ `max_length`) |

Decoding work is counted in decoded video pixels: the pixels of every frame the decoder goes through to reach the
sampled ones (from the keyframe before each), plus 17 times those of each sampled frame (its conversion and
resizing) and 17 times those of each image (`processing_gve.SAMPLED_FRAME_COST`, `IMAGE_PIXEL_COST`); a unit
is about 1.3 ns of CPU. Media whose work exceeds a limit are refused before they are decoded.

Errors: a bad request raises `HandlerError` (a `ValueError`) whose message starts with the request field at
fault, then the reason, whatever the value (huge numbers, lone surrogates, deep nesting): `inputs: at most 32
inputs per request, got 40`, `inputs[2].image: URL scheme 'ftp' is not allowed (allowed: http, https)`,
`inputs.sentences[1].video: download exceeds 200000000 bytes`, `parameters.max_frames: must be an integer from 2
to 64, got 500`, `parameters.colour: unknown parameter (...)`, `request: payload of 25000000 bytes exceeds the
limit of 20000000 bytes`. Media are written to a private temporary folder (`gve-handler-*`), removed when the
request ends, whether it succeeded or not.
"""

import contextlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModel
from transformers.dynamic_module_utils import get_class_from_dynamic_module

# handler.py ships beside the remote code in every GVE folder; its limits, fetcher and input names are the
# remote code's own (one home for each), imported the way transformers imports remote code.
processing = sys.modules[
    get_class_from_dynamic_module("processing_gve.MediaLimits", os.path.dirname(__file__)).__module__
]

PIXELS_PER_TOKEN = 28 * 28
TEMP_PREFIX = "gve-handler-"
ITEM_KEYS = ("text", "image", "video", *processing.TIME_RANGE)
SIMILARITY_KEYS = ("source_sentence", "sentences")
CONTROLS = (*processing.VIDEO_OPTIONS, *processing.IMAGE_OPTIONS)
PARAMETERS = ("instruction", *CONTROLS)
DOWNLOAD_WORKERS = 8
MAX_DEPTH = 32  # nesting of the request's JSON; GVE's schemas need four levels
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class HandlerError(ValueError):
    """A bad request; the message starts with the request field at fault, then the reason."""


@dataclass(frozen=True)
class HandlerLimits(processing.MediaLimits):
    """What one request may ask for: the limits table in this module's docstring documents each field.

    The media limits are the library's (`processing_gve.MediaLimits`) with a public endpoint's defaults:
    internal hosts refused, smaller downloads, a shorter deadline and a decoding budget per request.
    Each limit is a keyword argument of `EndpointHandler`, else its `GVE_<NAME>` environment variable, else
    the default.
    """

    max_inputs: int = 32
    max_payload_bytes: int = 20_000_000
    download_timeout: float = 10.0
    max_image_bytes: int = 20_000_000
    max_video_bytes: int = 200_000_000
    max_text_chars: int = 20_000
    max_fps: float = 8.0
    max_frames: int = 64
    max_pixels: int = 1280 * PIXELS_PER_TOKEN
    allow_private_hosts: bool = False
    max_image_pixels: int = 12_500_000
    max_decode_pixels: int = 4_000_000_000
    max_call_decode_pixels: int | None = 5_000_000_000
    batch_size: int = 2
    max_batch_tokens: int = 8192

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_frames < 2:
            raise ValueError(f"max_frames: must be at least 2 (the temporal patch size), got {self.max_frames}")


@dataclass
class _Media:
    """One image or video of a request, and where it was written."""

    field: str  # e.g. "inputs[2].image"
    kind: str  # "image" or "video"
    source: str  # the URL or data URI to fetch
    shown: str  # how messages name it
    path: str | None = None


@dataclass
class Request:
    """A checked request, ready to fetch and embed."""

    task: str  # "feature-extraction" or "sentence-similarity"
    items: list[dict[str, Any]]  # encode inputs; image/video values are `_Media` until fetched
    fields: list[str]  # the request field of each item, for error messages
    instruction: str | None
    controls: dict[str, Any]

    @property
    def media(self) -> list[_Media]:
        return [value for item in self.items for value in item.values() if isinstance(value, _Media)]

    def answer(self, embeddings: torch.Tensor) -> list:
        """The task's answer from the items' embeddings: the embeddings, or the source's similarities."""
        if self.task == "sentence-similarity":
            return (embeddings[1:] @ embeddings[0]).tolist()
        return embeddings.tolist()


class RequestReader:
    """The endpoint's request rules, without a model: check a request, fetch its media, name an input's error.

    `EndpointHandler` reads every request with one; so does the Ray Serve deployment (`gve_tools.serving`), so
    that both refuse the same requests with the same messages.
    """

    def __init__(self, limits: HandlerLimits) -> None:
        self.limits = limits

    def parse(self, data: Any) -> Request:
        """Check a request in one of the Hub's two schemas (this module's docstring); raises `HandlerError`."""
        self.check_body(data)
        inputs = data["inputs"]
        instruction, controls = self.parameters(data.get("parameters"))
        if isinstance(inputs, dict) and any(key in inputs for key in SIMILARITY_KEYS):
            return self._similarity(inputs, instruction, controls)
        return self.features(inputs, instruction, controls)

    def check_body(
        self, data: Any, fields: tuple[str, ...] = ("inputs", "parameters"), required: str = "inputs"
    ) -> None:
        """Check a request body before its fields: a JSON object of `fields`, with `required`, within the limits."""
        if not isinstance(data, dict):
            raise HandlerError(f'request: expected a JSON object with an "{required}" field, got {_json_type(data)}')
        _check_values(data)
        size = len(
            json.dumps(data, ensure_ascii=False, separators=(",", ":"), skipkeys=True, default=_placeholder).encode()
        )
        self.check_size(size)
        unknown = [str(key) for key in data if key not in fields]
        if unknown:
            raise HandlerError(f"{unknown[0]}: unknown field (the fields are {', '.join(fields)})")
        if required not in data:
            raise HandlerError(f'{required}: missing (the request must be a JSON object with an "{required}" field)')

    def check_size(self, size: int) -> None:
        """Refuse a request body of `size` bytes over `max_payload_bytes`."""
        if size > self.limits.max_payload_bytes:
            raise HandlerError(
                f"request: payload of {size} bytes exceeds the limit of {self.limits.max_payload_bytes} bytes"
            )

    def features(
        self, inputs: Any, instruction: str | None, controls: dict[str, Any], field: str = "inputs", pairs: bool = True
    ) -> Request:
        """Check feature-extraction inputs (an item or a list of items) found at request field `field`.

        `pairs` says whether the field could also have held a sentence-similarity object (for the message).
        """
        if isinstance(inputs, (str, dict)):
            items, fields = [self._item(inputs, field)], [field]
        elif isinstance(inputs, list):
            if not inputs:
                raise HandlerError(f"{field}: the list is empty; give at least one input")
            if len(inputs) > self.limits.max_inputs:
                raise HandlerError(f"{field}: at most {self.limits.max_inputs} inputs per request, got {len(inputs)}")
            fields = [f"{field}[{i}]" for i in range(len(inputs))]
            items = [self._item(item, name) for item, name in zip(inputs, fields, strict=True)]
        else:
            kinds = (
                'a string, an item object, a list of items or an object with "source_sentence" and "sentences"'
                if pairs
                else "a string, an item object or a list of items"
            )
            raise HandlerError(f"{field}: expected {kinds}, got {_json_type(inputs)}")
        return Request("feature-extraction", items, fields, instruction, controls)

    def _similarity(self, inputs: dict, instruction: str | None, controls: dict) -> Request:
        unknown = [str(key) for key in inputs if key not in SIMILARITY_KEYS]
        if unknown:
            raise HandlerError(f"inputs.{unknown[0]}: unknown key (the keys are source_sentence, sentences)")
        for key in SIMILARITY_KEYS:
            if inputs.get(key) is None:
                raise HandlerError(f"inputs.{key}: missing")
        sentences = inputs["sentences"]
        if not isinstance(sentences, list):
            raise HandlerError(f"inputs.sentences: expected a list of items, got {_json_type(sentences)}")
        if not sentences:
            raise HandlerError("inputs.sentences: the list is empty; give at least one sentence")
        if len(sentences) > self.limits.max_inputs:
            raise HandlerError(
                f"inputs.sentences: at most {self.limits.max_inputs} sentences per request, got {len(sentences)}"
            )
        fields = ["inputs.source_sentence", *(f"inputs.sentences[{j}]" for j in range(len(sentences)))]
        sources = [inputs["source_sentence"], *sentences]
        items = [self._item(item, field) for item, field in zip(sources, fields, strict=True)]
        if instruction is not None:
            items[0]["instruction"] = instruction  # the query's instruction; the documents keep the default
        return Request("sentence-similarity", items, fields, None, controls)

    def _item(self, item: Any, field: str) -> dict[str, Any]:
        """Check one item; returns the `model.encode` input, with `_Media` placeholders for its media."""
        if isinstance(item, str):
            item = {"text": item}
            text_field = field
        elif isinstance(item, dict):
            text_field = f"{field}.text"
            for key in item:
                if key not in ITEM_KEYS:
                    raise HandlerError(f"{field}.{key}: unknown key (the keys are {', '.join(ITEM_KEYS)})")
        else:
            raise HandlerError(
                f'{field}: expected a string or an object with "text", "image" and/or "video", got {_json_type(item)}'
            )
        checked: dict[str, Any] = {}
        text = item.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise HandlerError(f"{text_field}: must be a string, got {_json_type(text)}")
            if len(text) > self.limits.max_text_chars:
                raise HandlerError(
                    f"{text_field}: text of {len(text)} characters exceeds the limit of {self.limits.max_text_chars}"
                )
            if text.strip():
                checked["text"] = text
        for kind in ("image", "video"):
            if item.get(kind) is not None:
                checked[kind] = self._source(item[kind], kind, f"{field}.{kind}")
        for key in processing.TIME_RANGE:  # the remote code checks the values, and the range against the video
            if item.get(key) is not None:
                checked[key] = item[key]
        if not checked.keys() & {"text", "image", "video"}:
            raise HandlerError(f"{field}: the input has no content; give non-empty text, an image or a video")
        return checked

    def _source(self, source: Any, kind: str, field: str) -> _Media:
        """Check where an image or video comes from (without fetching it)."""
        accepted = f"give an http(s) URL or a base64 data URI (data:{kind}/...;base64,...)"
        if not isinstance(source, str):
            raise HandlerError(f"{field}: must be a string ({accepted[5:]}), got {_json_type(source)}")
        if not source.strip():
            raise HandlerError(f"{field}: is empty; {accepted}")
        try:
            if source[:5].lower() == "data:":
                processing.parse_data_uri(source, kind)
                return _Media(field, kind, source, processing.describe_source(source))
            if "://" not in source:
                payload = "".join(source.split())
                if kind == "image" and len(payload) % 4 == 0 and _BASE64.fullmatch(payload):
                    # bare base64, as the Hub's image widgets send an image: checked like a data URI
                    return _Media(field, kind, f"data:image/*;base64,{payload}", "'base64 image data'")
                raise HandlerError(f"{field}: local file paths are not accepted; {accepted}")
            if source.split("://", 1)[0].lower() == "file":
                raise HandlerError(f"{field}: file:// URLs are not accepted; {accepted}")
            processing.parse_url(source, self.limits)
        except processing.MediaError as error:
            raise HandlerError(f"{field}: {error}") from None
        return _Media(field, kind, source, processing.describe_source(source))

    def parameters(self, parameters: Any) -> tuple[str | None, dict[str, Any]]:
        """Check `parameters`; returns the instruction and the encode controls."""
        if parameters is None:
            return None, {}
        if not isinstance(parameters, dict):
            raise HandlerError(f"parameters: expected an object, got {_json_type(parameters)}")
        limits = self.limits
        # the library's ranges (processing_gve.CONTROL_RANGES), within this endpoint's limits
        highs = {"max_frames": limits.max_frames, "total_pixels": limits.max_frames * limits.max_pixels}
        bounds = {
            name: (low, min(high, highs.get(name, limits.max_pixels)))
            for name, (low, high) in processing.CONTROL_RANGES.items()
        }
        instruction, controls = None, {}
        for name, value in parameters.items():
            field = f"parameters.{name}"
            if name not in PARAMETERS:
                raise HandlerError(f"{field}: unknown parameter (the parameters are {', '.join(PARAMETERS)})")
            if value is None:
                continue
            if name == "instruction":
                if not isinstance(value, str) or not value.strip():
                    raise HandlerError(f"{field}: must be a non-empty string, got {_show(value)}")
                if len(value) > limits.max_text_chars:
                    raise HandlerError(
                        f"{field}: text of {len(value)} characters exceeds the limit of {limits.max_text_chars}"
                    )
                instruction = value
            elif name == "fps":
                number = not isinstance(value, bool) and isinstance(value, (int, float))
                if not number or not 0 < value <= limits.max_fps:  # comparisons, exact for any int, refuse nan
                    raise HandlerError(
                        f"{field}: must be a number greater than 0 and at most {limits.max_fps:g}, got {_show(value)}"
                    )
                controls[name] = float(value)
            else:
                low, high = bounds[name]
                integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
                if isinstance(value, bool) or not integral or not low <= value <= high:
                    raise HandlerError(f"{field}: must be an integer from {low} to {high}, got {_show(value)}")
                controls[name] = int(value)
        for low, high in (("min_pixels", "max_pixels"), ("image_min_pixels", "image_max_pixels")):
            if low in controls and high in controls and controls[low] > controls[high]:
                raise HandlerError(f"parameters.{low}: must not exceed {high} ({controls[high]}), got {controls[low]}")
        return instruction, controls

    @contextlib.contextmanager
    def fetched(self, request: Request) -> Iterator[list[dict[str, Any]]]:
        """Fetch the request's media into a private temporary folder; yields the `model.encode` inputs.

        The folder (`gve-handler-*`) is removed when the block ends, whether it succeeded or not.
        """
        folder = None
        try:
            if request.media:
                folder = tempfile.mkdtemp(prefix=TEMP_PREFIX)
                self._fetch_all(request.media, folder)
            yield [
                {key: value.path if isinstance(value, _Media) else value for key, value in item.items()}
                for item in request.items
            ]
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _fetch_all(self, media: list[_Media], folder: str) -> None:
        """Fetch every image and video into `folder`, a few at once; raises the first failure in request order."""

        def fetch(index: int, value: _Media) -> str:
            try:
                return processing.fetch_media(
                    value.source, value.kind, os.path.join(folder, f"{index}-{value.kind}"), self.limits
                )
            except processing.MediaError as error:
                raise HandlerError(f"{value.field}: {error}") from None

        if len(media) == 1:
            media[0].path = fetch(0, media[0])
            return
        with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(media))) as pool:
            futures = [pool.submit(fetch, i, value) for i, value in enumerate(media)]
            try:
                for value, future in zip(media, futures, strict=True):
                    value.path = future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def input_error(self, request: Request, error: Exception) -> HandlerError | None:
        """The `HandlerError` for an input the model refused (a `GVEInputError` at its position), else None.

        It names the input's request field (and the key at fault), with the media's sources, not their files.
        """
        position = getattr(error, "position", None)  # a GVEInputError (of the model's copy of the remote code)
        if not isinstance(error, ValueError) or position is None or not 0 <= position < len(request.items):
            return None
        field, reason = request.fields[position], error.reason
        for value in request.media:
            if value.path:
                reason = reason.replace(repr(value.path), value.shown).replace(value.path, value.shown)
        if error.field in ("image", "video", *processing.TIME_RANGE) and error.field in request.items[position]:
            field = f"{field}.{error.field}"
        return HandlerError(f"{field}: {reason}")


class EndpointHandler:
    """Inference Endpoints handler: `EndpointHandler(path)(request) -> list`.

    Args:
        path: the model folder (Inference Endpoints passes its copy of the repository).
        **limits: any `HandlerLimits` field, overriding its `GVE_*` environment variable and default.
    """

    def __init__(self, path: str = "", **limits: Any) -> None:
        self.limits = HandlerLimits.from_env(**limits)
        self.reader = RequestReader(self.limits)
        cuda = torch.cuda.is_available()
        model = AutoModel.from_pretrained(path, trust_remote_code=True, dtype=torch.bfloat16 if cuda else torch.float32)
        self.model = model.to("cuda" if cuda else "cpu").eval()
        self.processor = self.model.processor  # loaded now, not during the first request
        max_length = self.processor.embedding_config.max_length
        if self.limits.max_batch_tokens < max_length:
            raise ValueError(f"max_batch_tokens: must be at least the model's max_length ({max_length})")
        self._lock = threading.Lock()  # one forward pass at a time; downloads run outside it

    def __call__(self, data: dict[str, Any]) -> list:
        """Serve one request: a list of embeddings (feature-extraction) or of similarities (sentence-similarity)."""
        request = self.reader.parse(data)
        with self.reader.fetched(request) as items:
            return request.answer(self._encode(request, items))

    def _encode(self, request: Request, items: list[dict[str, Any]]) -> torch.Tensor:
        """Embed the request's items, naming any failure by its request field."""
        try:
            with self._lock:
                return self.model.encode(
                    items,
                    instruction=request.instruction,
                    show_progress_bar=False,
                    limits=self.limits,
                    batch_size=self.limits.batch_size,
                    max_batch_tokens=self.limits.max_batch_tokens,
                    **request.controls,
                )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise
        except ValueError as error:
            named = self.reader.input_error(request, error)
            if named is None:
                raise
            raise named from error


def _check_values(data: Any) -> None:
    """Refuse what JSON tools choke on, naming where it is: nesting deeper than `MAX_DEPTH`, strings that are
    not Unicode (lone surrogates) and integers too long to print (Python refuses beyond 4300 digits)."""
    stack = [(data, "request", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise HandlerError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str) and (problem := processing.unicode_problem(value)):
            raise HandlerError(f"{where}: {problem}")
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4000:
            raise HandlerError(f"{where}: an integer too large to be a value, got {_show(value)}")
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and (problem := processing.unicode_problem(key)):
                    raise HandlerError(f"{where}: key {key!r} {problem}")
                stack.append((item, f"{where}.{key}" if depth else str(key), depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))


def _json_type(value: Any) -> str:
    """The JSON name of a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    """A value as JSON, shortened, for messages."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = json.dumps(value, default=_placeholder)
    return text if len(text) <= 60 else text[:57] + "..."


def _placeholder(value: Any) -> str:
    """Stands in for a value JSON cannot hold (the type checks then report it)."""
    return f"<{type(value).__name__}>"


__all__ = ["EndpointHandler", "HandlerError", "HandlerLimits", "Request", "RequestReader"]
