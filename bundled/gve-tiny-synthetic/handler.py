# Copyright 2025 Alibaba-NLP and the GVE authors. Licensed under the Apache License, Version 2.0.
"""Hugging Face Inference Endpoints handler for GVE: embeddings and similarities of text, images and videos.

Requests are JSON, in the Hub's task schemas:

* feature-extraction: `{"inputs": ITEM | [ITEM, ...], "parameters": {...}}` returns `number[][]`, one
  L2-normalised embedding per input, in order; always two-dimensional, also for a single item.
* sentence-similarity: `{"inputs": {"source_sentence": ITEM, "sentences": [ITEM, ...]}, "parameters": {...}}`
  returns `number[]`, the cosine similarity of the source with each sentence, in order.

An ITEM is a string, which is always text (never a file name or a URL), or an object with any of `text`, `image`
and `video`, e.g. `{"text": "the same scene at night", "image": "https://example.com/photo.jpg"}`. An image or a
video is an `http(s)` URL, which the handler downloads, or a base64 data URI (`data:image/png;base64,...`,
`data:video/mp4;base64,...`). Local paths and `file://` URLs are refused. A `null` value is the same as leaving
the field out.

`parameters` (optional; an unknown name is an error; unset controls take the checkpoint's `config.json` defaults):

| parameter | type | meaning (allowed values) |
| --- | --- | --- |
| `instruction` | string | system instruction (at most `max_text_chars` characters) |
| `fps` | number | frames sampled per second of video (above 0, at most `max_fps`) |
| `max_frames` | integer | most frames per video (2 to `max_frames`) |
| `min_pixels`, `max_pixels` | integer | pixels per video frame after resizing (1 to `max_pixels`) |
| `total_pixels` | integer | pixel budget of a whole video (1 to `max_frames` × `max_pixels`) |
| `image_min_pixels`, `image_max_pixels` | integer | pixels per image after resizing (1 to `max_pixels`) |

In feature-extraction the instruction applies to every input. In sentence-similarity it applies to the source
(the query) only; the sentences (the documents) keep the model's default instruction.

Limits (`HandlerLimits`): each is a keyword argument of `EndpointHandler`, else its environment variable, else
the default. `allowed_schemes` is a subset of http and https (comma-separated in the variable).

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
| `allow_private_hosts` | `GVE_ALLOW_PRIVATE_HOSTS` | False | downloads from internal (loopback, private) hosts |

Errors: a bad request raises `HandlerError` (a `ValueError`) whose message starts with the request field at
fault, then the reason: `inputs: at most 32 inputs per request, got 40`, `inputs[2].image: URL scheme 'ftp' is
not allowed (allowed: http, https)`, `inputs.sentences[1].video: download exceeds 200000000 bytes`,
`parameters.max_frames: must be an integer from 2 to 64, got 500`, `parameters.colour: unknown parameter (...)`,
`request: payload of 25000000 bytes exceeds the limit of 20000000 bytes`. Media are written to a private temporary
folder (`gve-handler-*`), removed when the request ends, whether it succeeded or not.
"""

import base64
import binascii
import dataclasses
import ipaddress
import json
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import torch
import urllib3
from transformers import AutoModel

PIXELS_PER_TOKEN = 28 * 28
TEMP_PREFIX = "gve-handler-"
ENV_PREFIX = "GVE_"
ITEM_KEYS = ("text", "image", "video")
SIMILARITY_KEYS = ("source_sentence", "sentences")
CONTROLS = ("fps", "max_frames", "min_pixels", "max_pixels", "total_pixels", "image_min_pixels", "image_max_pixels")
PARAMETERS = ("instruction", *CONTROLS)
SUPPORTED_SCHEMES = ("http", "https")
DOWNLOAD_WORKERS = 8
MAX_REDIRECTS = 5
CHUNK_BYTES = 1 << 16

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"})
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

# `model.encode` names a bad input by its position: "inputs[3]: reason".
_ENCODE_ERROR = re.compile(r"^inputs\[(\d+)\]: (.*)$", re.S)


class HandlerError(ValueError):
    """A bad request; the message starts with the request field at fault, then the reason."""


@dataclass(frozen=True)
class HandlerLimits:
    """What one request may ask for: the limits table in this module's docstring documents each field.

    Each limit is a keyword argument of `EndpointHandler`, else its `GVE_<NAME>` environment variable, else
    the default. `allowed_schemes` is a subset of http and https (comma-separated in the variable).
    """

    max_inputs: int = 32
    max_payload_bytes: int = 20_000_000
    allowed_schemes: tuple[str, ...] = SUPPORTED_SCHEMES
    download_timeout: float = 10.0
    max_image_bytes: int = 20_000_000
    max_video_bytes: int = 200_000_000
    max_text_chars: int = 20_000
    max_fps: float = 8.0
    max_frames: int = 64
    max_pixels: int = 1280 * PIXELS_PER_TOKEN
    allow_private_hosts: bool = False

    def __post_init__(self) -> None:
        schemes = self.allowed_schemes
        if isinstance(schemes, str):
            schemes = schemes.split(",")
        schemes = tuple(dict.fromkeys(str(scheme).strip().lower() for scheme in schemes if str(scheme).strip()))
        if not schemes or not set(schemes) <= set(SUPPORTED_SCHEMES):
            raise ValueError(f"allowed_schemes: must be some of {', '.join(SUPPORTED_SCHEMES)}, got {schemes}")
        object.__setattr__(self, "allowed_schemes", schemes)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in (int, float) and (isinstance(value, bool) or not isinstance(value, field.type | int)):
                raise ValueError(
                    f"{field.name}: must be {'an integer' if field.type is int else 'a number'}, got {value!r}"
                )
            if field.type in (int, float) and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field.name}: must be positive, got {value!r}")
        if not isinstance(self.allow_private_hosts, bool):
            raise ValueError(f"allow_private_hosts: must be true or false, got {self.allow_private_hosts!r}")
        if self.max_frames < 2:
            raise ValueError(f"max_frames: must be at least 2 (the temporal patch size), got {self.max_frames}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "HandlerLimits":
        """Limits from keyword arguments, else `GVE_<NAME>` environment variables, else the defaults."""
        environ = os.environ if environ is None else environ
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"unknown limit(s) {unknown}; the limits are {names}")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in overrides:
                values[field.name] = overrides[field.name]
                continue
            variable = ENV_PREFIX + field.name.upper()
            raw = environ.get(variable)
            if raw is None or not raw.strip():
                continue
            if field.type is bool:
                flag = raw.strip().lower()
                if flag not in ("1", "true", "yes", "0", "false", "no"):
                    raise ValueError(f"{variable}: expected true or false, got {raw!r}")
                values[field.name] = flag in ("1", "true", "yes")
                continue
            try:
                values[field.name] = raw if field.type not in (int, float) else field.type(raw.strip())
            except ValueError:
                kind = "an integer" if field.type is int else "a number"
                raise ValueError(f"{variable}: expected {kind}, got {raw!r}") from None
        return cls(**values)


@dataclass
class _Media:
    """One image or video of a request, and where it was written."""

    field: str  # e.g. "inputs[2].image"
    kind: str  # "image" or "video"
    source: str  # the URL or data URI as sent
    path: str | None = None


@dataclass
class _Request:
    """A checked request, ready to fetch and embed."""

    task: str  # "feature-extraction" or "sentence-similarity"
    items: list[dict[str, Any]]  # encode inputs; image/video values are `_Media` until fetched
    fields: list[str]  # the request field of each item, for error messages
    instruction: str | None
    controls: dict[str, Any]

    @property
    def media(self) -> list[_Media]:
        return [value for item in self.items for value in item.values() if isinstance(value, _Media)]


class EndpointHandler:
    """Inference Endpoints handler: `EndpointHandler(path)(request) -> list`.

    Args:
        path: the model folder (Inference Endpoints passes its copy of the repository).
        **limits: any `HandlerLimits` field, overriding its `GVE_*` environment variable and default.
    """

    def __init__(self, path: str = "", **limits: Any) -> None:
        self.limits = HandlerLimits.from_env(**limits)
        cuda = torch.cuda.is_available()
        model = AutoModel.from_pretrained(path, trust_remote_code=True, dtype=torch.bfloat16 if cuda else torch.float32)
        self.model = model.to("cuda" if cuda else "cpu").eval()
        self.processor = self.model.processor  # loaded now, not during the first request
        self._lock = threading.Lock()  # one forward pass at a time; downloads run outside it

    def __call__(self, data: dict[str, Any]) -> list:
        """Serve one request: a list of embeddings (feature-extraction) or of similarities (sentence-similarity)."""
        request = self._parse(data)
        folder = None
        try:
            if request.media:
                folder = tempfile.mkdtemp(prefix=TEMP_PREFIX)
                self._fetch_all(request.media, folder)
            embeddings = self._encode(request)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        if request.task == "sentence-similarity":
            return (embeddings[1:] @ embeddings[0]).tolist()
        return embeddings.tolist()

    # ------------------------------------------------------------------ checking the request

    def _parse(self, data: Any) -> _Request:
        if not isinstance(data, dict):
            raise HandlerError(f'request: expected a JSON object with an "inputs" field, got {_json_type(data)}')
        size = len(
            json.dumps(data, ensure_ascii=False, separators=(",", ":"), skipkeys=True, default=_placeholder).encode()
        )
        if size > self.limits.max_payload_bytes:
            raise HandlerError(
                f"request: payload of {size} bytes exceeds the limit of {self.limits.max_payload_bytes} bytes"
            )
        unknown = [str(key) for key in data if key not in ("inputs", "parameters")]
        if unknown:
            raise HandlerError(f"{unknown[0]}: unknown field (the fields are inputs, parameters)")
        if "inputs" not in data:
            raise HandlerError('inputs: missing (the request must be a JSON object with an "inputs" field)')
        inputs = data["inputs"]
        instruction, controls = self._parameters(data.get("parameters"))
        if isinstance(inputs, dict) and any(key in inputs for key in SIMILARITY_KEYS):
            return self._similarity(inputs, instruction, controls)
        if isinstance(inputs, (str, dict)):
            items, fields = [self._item(inputs, "inputs")], ["inputs"]
        elif isinstance(inputs, list):
            if not inputs:
                raise HandlerError("inputs: the list is empty; give at least one input")
            if len(inputs) > self.limits.max_inputs:
                raise HandlerError(f"inputs: at most {self.limits.max_inputs} inputs per request, got {len(inputs)}")
            fields = [f"inputs[{i}]" for i in range(len(inputs))]
            items = [self._item(item, field) for item, field in zip(inputs, fields, strict=True)]
        else:
            raise HandlerError(
                'inputs: expected a string, an item object, a list of items or an object with "source_sentence" '
                f'and "sentences", got {_json_type(inputs)}'
            )
        return _Request("feature-extraction", items, fields, instruction, controls)

    def _similarity(self, inputs: dict, instruction: str | None, controls: dict) -> _Request:
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
        return _Request("sentence-similarity", items, fields, None, controls)

    def _item(self, item: Any, field: str) -> dict[str, Any]:
        """Check one item; returns the `model.encode` input, with `_Media` placeholders for its media."""
        if isinstance(item, str):
            item = {"text": item}
            text_field = field
        elif isinstance(item, dict):
            text_field = f"{field}.text"
            for key in item:
                if key not in ITEM_KEYS:
                    raise HandlerError(f"{field}.{key}: unknown key (the keys are text, image, video)")
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
                checked[kind] = _Media(f"{field}.{kind}", kind, self._source(item[kind], kind, f"{field}.{kind}"))
        if not checked:
            raise HandlerError(f"{field}: the input has no content; give non-empty text, an image or a video")
        return checked

    def _source(self, source: Any, kind: str, field: str) -> str:
        """Check where an image or video comes from (without fetching it)."""
        accepted = f"give an http(s) URL or a base64 data URI (data:{kind}/...;base64,...)"
        if not isinstance(source, str):
            raise HandlerError(f"{field}: must be a string ({accepted[5:]}), got {_json_type(source)}")
        if not source.strip():
            raise HandlerError(f"{field}: is empty; {accepted}")
        if source[:5].lower() == "data:":
            _data_uri(source, kind, field)
            return source
        if "://" not in source:
            raise HandlerError(f"{field}: local file paths are not accepted; {accepted}")
        scheme = source.split("://", 1)[0].lower()
        if scheme == "file":
            raise HandlerError(f"{field}: file:// URLs are not accepted; {accepted}")
        if scheme not in self.limits.allowed_schemes:
            allowed = ", ".join(self.limits.allowed_schemes)
            raise HandlerError(f"{field}: URL scheme {scheme!r} is not allowed (allowed: {allowed})")
        try:
            host = urlsplit(source).hostname
        except ValueError as error:
            raise HandlerError(f"{field}: malformed URL {_describe(source)}: {error}") from None
        if not host:
            raise HandlerError(f"{field}: the URL {_describe(source)} has no host")
        return source

    def _parameters(self, parameters: Any) -> tuple[str | None, dict[str, Any]]:
        """Check `parameters`; returns the instruction and the encode controls."""
        if parameters is None:
            return None, {}
        if not isinstance(parameters, dict):
            raise HandlerError(f"parameters: expected an object, got {_json_type(parameters)}")
        limits = self.limits
        bounds = {
            "max_frames": (2, limits.max_frames),
            "min_pixels": (1, limits.max_pixels),
            "max_pixels": (1, limits.max_pixels),
            "total_pixels": (1, limits.max_frames * limits.max_pixels),
            "image_min_pixels": (1, limits.max_pixels),
            "image_max_pixels": (1, limits.max_pixels),
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
                number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                if not number or not 0 < value <= limits.max_fps:
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

    # ------------------------------------------------------------------ fetching and embedding

    def _fetch_all(self, media: list[_Media], folder: str) -> None:
        """Fetch every image and video into `folder`, a few at once; raises the first failure in request order."""
        if len(media) == 1:
            media[0].path = _fetch_media(media[0], folder, 0, self.limits)
            return
        with ThreadPoolExecutor(max_workers=min(DOWNLOAD_WORKERS, len(media))) as pool:
            futures = [pool.submit(_fetch_media, value, folder, i, self.limits) for i, value in enumerate(media)]
            try:
                for value, future in zip(media, futures, strict=True):
                    value.path = future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _encode(self, request: _Request) -> torch.Tensor:
        """Embed the request's items, naming any failure by its request field."""
        media = request.media
        items = [
            {key: value.path if isinstance(value, _Media) else value for key, value in item.items()}
            for item in request.items
        ]
        try:
            with self._lock:
                return self.model.encode(
                    items, instruction=request.instruction, show_progress_bar=False, **request.controls
                )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise
        except ValueError as error:
            match = _ENCODE_ERROR.match(str(error))
            if match is None or int(match.group(1)) >= len(items):
                raise
            index, reason = int(match.group(1)), match.group(2)
            field = request.fields[index]
            for value in media:
                if value.path:
                    reason = reason.replace(repr(value.path), _describe(value.source))
                    reason = reason.replace(value.path, _describe(value.source))
            for kind in ("video", "image"):
                if reason.startswith(f"could not read {kind}") and kind in request.items[index]:
                    field = f"{field}.{kind}"
            raise HandlerError(f"{field}: {reason}") from error


def _fetch_media(media: _Media, folder: str, index: int, limits: HandlerLimits) -> str:
    """Download a URL (streamed, with a time and size cap) or decode a data URI into a file in `folder`.

    Returns the file's path. Raises `HandlerError` naming `media.field`.
    """
    field, kind, source = media.field, media.kind, media.source
    cap = limits.max_video_bytes if kind == "video" else limits.max_image_bytes
    if source[:5].lower() == "data:":
        mime, payload = _data_uri(source, kind, field)
        payload = "".join(payload.split())
        if len(payload) // 4 * 3 - payload[-2:].count("=") > cap:
            raise HandlerError(f"{field}: data URI exceeds {cap} bytes")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise HandlerError(f"{field}: the data URI is not valid base64 ({error})") from None
        if len(data) > cap:
            raise HandlerError(f"{field}: data URI exceeds {cap} bytes")
        path = os.path.join(folder, f"{index}-{kind}{MIME_SUFFIXES.get(mime, DEFAULT_SUFFIXES[kind])}")
        with open(path, "wb") as file:
            file.write(data)
        return path

    timeout = limits.download_timeout
    deadline = time.monotonic() + timeout
    url = source
    try:
        for _ in range(MAX_REDIRECTS + 1):
            scheme = urlsplit(url).scheme.lower()
            if scheme not in limits.allowed_schemes:
                allowed = ", ".join(limits.allowed_schemes)
                raise HandlerError(f"{field}: redirected to URL scheme {scheme!r}, which is not allowed ({allowed})")
            if not limits.allow_private_hosts:
                _refuse_private_host(url, field)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise requests.Timeout()
            response = requests.get(url, stream=True, timeout=remaining, allow_redirects=False)
            if not response.is_redirect:
                break
            url = urljoin(url, response.headers["location"])
            response.close()
        else:
            raise HandlerError(f"{field}: could not download {_describe(source)}: more than {MAX_REDIRECTS} redirects")
        with response:
            if response.status_code >= 400:
                reason = f"{response.status_code} {response.reason or ''}".strip()
                raise HandlerError(f"{field}: could not download {_describe(source)}: {reason}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise HandlerError(f"{field}: download exceeds {cap} bytes ({declared} bytes declared)")
            suffix = os.path.splitext(urlsplit(url).path)[1].lower()
            if suffix not in (VIDEO_SUFFIXES if kind == "video" else IMAGE_SUFFIXES):
                mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                suffix = MIME_SUFFIXES.get(mime, DEFAULT_SUFFIXES[kind])
            path = os.path.join(folder, f"{index}-{kind}{suffix}")
            size = 0
            with open(path, "wb") as file:
                for chunk in _body(response):
                    size += len(chunk)
                    if size > cap:
                        raise HandlerError(f"{field}: download exceeds {cap} bytes")
                    if time.monotonic() > deadline:
                        raise requests.Timeout()
                    file.write(chunk)
        return path
    except requests.Timeout:
        raise HandlerError(f"{field}: could not download {_describe(source)}: timed out after {timeout:g} s") from None
    except requests.RequestException as error:
        raise HandlerError(f"{field}: could not download {_describe(source)}: {_first_line(error)}") from None


def _refuse_private_host(url: str, field: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or otherwise internal address.

    A public endpoint must not become a proxy into its own network (cloud metadata services, internal
    hosts). Checked at every redirect hop; `allow_private_hosts` lifts it.
    """
    parts = urlsplit(url)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    except (OSError, UnicodeError) as error:
        raise HandlerError(f"{field}: could not resolve the host of {_describe(url)} ({error})") from None
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise HandlerError(
                f"{field}: the host of {_describe(url)} is an internal address ({address}); "
                "downloads from loopback, private and link-local addresses are off (allow_private_hosts)"
            )


def _body(response: requests.Response) -> Iterator[bytes]:
    """A streamed response's body, decoded, in pieces as they arrive.

    `iter_content` waits for whole chunks, so a server that sends a little at a time would hold it past the
    deadline; urllib3 2's `read1` returns what one network read gives.
    """
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:
        yield from response.iter_content(chunk_size=CHUNK_BYTES)
        return
    try:
        while chunk := read1(CHUNK_BYTES, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as error:
        raise requests.Timeout(error) from error
    except urllib3.exceptions.HTTPError as error:
        raise requests.ConnectionError(error) from error


def _data_uri(source: str, kind: str, field: str) -> tuple[str, str]:
    """Split a base64 data URI into its media type and payload, checking that it holds a `kind`."""
    header, comma, payload = source[5:].partition(",")
    if not comma:
        raise HandlerError(f"{field}: malformed data URI (expected data:{kind}/<type>;base64,<data>)")
    mime, *options = (part.strip().lower() for part in header.split(";"))
    if "base64" not in options:
        raise HandlerError(f"{field}: only base64 data URIs are accepted (data:{kind}/<type>;base64,<data>)")
    if not mime.startswith(f"{kind}/"):
        raise HandlerError(f"{field}: expected a data:{kind}/... URI, got media type {mime or 'none'!r}")
    return mime, payload


def _describe(source: str) -> str:
    """A short quoted form of a URL or data URI, for messages."""
    if source[:5].lower() == "data:":
        return repr(source.split(",", 1)[0] + ",...")
    return repr(source if len(source) <= 120 else source[:117] + "...")


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
    text = json.dumps(value, default=_placeholder)
    return text if len(text) <= 60 else text[:57] + "..."


def _placeholder(value: Any) -> str:
    """Stands in for a value JSON cannot hold (the type checks then report it)."""
    return f"<{type(value).__name__}>"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["EndpointHandler", "HandlerError", "HandlerLimits"]
