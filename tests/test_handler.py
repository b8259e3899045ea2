"""The Inference Endpoints handler (`handler.py`): task schemas, agreement with `model.encode`, limits and errors."""

import base64
import dataclasses
import os
import re
import tempfile
import time

import pytest
import torch
import torch.nn.functional as F

import handler as handler_module
from gve_tools.repo import ROOT
from handler import TEMP_PREFIX, EndpointHandler, HandlerError, HandlerLimits
from tests.media_server import serve

INSTRUCTION = "Find the video that matches the query."


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def media_server(media):
    """A server on 127.0.0.1 over the media folder, with the misbehaving endpoints of `tests.media_server`."""
    with serve(media["image"].parent) as url:
        yield url


@pytest.fixture(scope="module")
def handler(tiny_path):
    return EndpointHandler(str(tiny_path), allow_private_hosts=True)  # the test server is on loopback


@pytest.fixture(scope="module")
def strict(tiny_path):
    """A handler with small limits."""
    return EndpointHandler(
        str(tiny_path),
        max_inputs=3,
        max_payload_bytes=100_000,
        allowed_schemes="http",
        download_timeout=1,
        max_image_bytes=10_000,
        max_video_bytes=50_000,
        max_text_chars=100,
        allow_private_hosts=True,
    )


def handler_temp_entries() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith(TEMP_PREFIX)}


@pytest.fixture(autouse=True)
def no_temp_files_left():
    """Every request, good or bad, removes the media it wrote."""
    before = handler_temp_entries()
    yield
    assert handler_temp_entries() - before == set()


def data_uri(path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def error_of(handler, data) -> str:
    with pytest.raises(ValueError) as caught:
        handler(data)
    assert isinstance(caught.value, HandlerError)
    return str(caught.value)


def as_tensor(rows) -> torch.Tensor:
    assert isinstance(rows, list) and all(isinstance(row, list) for row in rows)
    assert all(isinstance(value, float) for row in rows for value in row)
    return torch.tensor(rows)


def assert_agrees(rows, expected: torch.Tensor) -> None:
    got = as_tensor(rows)
    assert got.shape == expected.shape
    assert torch.all(F.cosine_similarity(got, expected) >= 0.9999), F.cosine_similarity(got, expected)


# ---------------------------------------------------------------------- agreement with model.encode


def kinds(media, root) -> dict[str, tuple[dict, dict]]:
    """Per input kind: (the request item, the equivalent `model.encode` input, on local files)."""
    image, image_2, video, video_2 = (str(media[name]) for name in ("image", "image_2", "video", "video_2"))
    return {
        "text": ({"text": "a red square moving right"}, {"text": "a red square moving right"}),
        "image URL": ({"image": f"{root}/square.png"}, {"image": image}),
        "image data URI": ({"image": data_uri(media["image_2"], "image/jpeg")}, {"image": image_2}),
        "video URL": ({"video": f"{root}/right.mp4"}, {"video": video}),
        "video data URI": ({"video": data_uri(media["video_2"], "video/mp4")}, {"video": video_2}),
        "text+image": (
            {"text": "blue", "image": data_uri(media["image"], "image/png")},
            {"text": "blue", "image": image},
        ),
        "text+video": ({"text": "right", "video": f"{root}/right.mp4?download=1"}, {"text": "right", "video": video}),
        "redirected image URL": ({"image": f"{root}/redirect?to=/other.jpg"}, {"image": image_2}),
    }


KINDS = [
    "text",
    "image URL",
    "image data URI",
    "video URL",
    "video data URI",
    "text+image",
    "text+video",
    "redirected image URL",
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_input_kind_agrees_with_encode(handler, model, media, media_server, kind):
    item, local = kinds(media, media_server)[kind]
    expected = model.encode([local])
    assert_agrees(handler({"inputs": [item]}), expected)
    assert_agrees(handler({"inputs": item}), expected)  # a single item: still one row


def test_mixed_batch_agrees_with_encode(handler, model, media, media_server):
    pairs = [kinds(media, media_server)[kind] for kind in KINDS]
    items = ["plain text", *(item for item, _ in pairs)]
    rows = handler({"inputs": items, "parameters": {}})
    assert_agrees(rows, model.encode(["plain text", *(local for _, local in pairs)]))
    assert len(rows) == len(items)


def test_single_string_gives_one_row(handler, model):
    rows = handler({"inputs": "a single sentence"})
    assert len(rows) == 1 and len(rows[0]) == 64
    assert_agrees(rows, model.encode(["a single sentence"]))


def test_strings_are_always_text_never_files(handler, model, media, media_server):
    """A request cannot make the server read its own files: a str naming one is embedded as text."""
    names = [str(media["image"]), f"file://{media['video']}", f"{media_server}/square.png"]
    rows = handler({"inputs": names})
    assert_agrees(rows, model.encode([{"text": name} for name in names]))
    assert F.cosine_similarity(as_tensor(rows[:1]), model.encode([str(media["image"])])).item() < 0.999


def test_instruction_applies_to_every_input(handler, model, media, media_server):
    items = ["a query", {"image": f"{media_server}/square.png"}]
    rows = handler({"inputs": items, "parameters": {"instruction": INSTRUCTION}})
    assert_agrees(rows, model.encode(["a query", {"image": str(media["image"])}], instruction=INSTRUCTION))
    assert F.cosine_similarity(as_tensor(rows[:1]), model.encode(["a query"])).item() < 0.9999


def test_video_and_image_parameters_reach_the_model(handler, model, media, media_server):
    item = {"video": f"{media_server}/long.mp4"}
    local = {"video": str(media["long_video"])}
    rows = handler({"inputs": [item], "parameters": {"max_frames": 4}})
    assert_agrees(rows, model.encode([local], max_frames=4))
    assert F.cosine_similarity(as_tensor(rows), model.encode([local])).item() < 0.9999
    controls = {"fps": 0.5, "max_pixels": 64 * 28 * 28, "min_pixels": 16 * 28 * 28, "total_pixels": 2000 * 28 * 28}
    assert_agrees(handler({"inputs": [item], "parameters": controls}), model.encode([local], **controls))
    image = {"image": f"{media_server}/square.png"}
    controls = {"image_max_pixels": 8 * 28 * 28, "image_min_pixels": 4 * 28 * 28}
    rows = handler({"inputs": [image], "parameters": controls})
    assert_agrees(rows, model.encode([{"image": str(media["image"])}], **controls))
    assert F.cosine_similarity(as_tensor(rows), model.encode([{"image": str(media["image"])}])).item() < 0.9999


@pytest.mark.parametrize("instruction", [None, INSTRUCTION])
def test_sentence_similarity(handler, model, media, media_server, instruction):
    source = {"text": "a red square moving right"}
    sentences = ["a red square", {"video": f"{media_server}/right.mp4"}, {"image": f"{media_server}/square.png"}]
    local = ["a red square", {"video": str(media["video"])}, {"image": str(media["image"])}]
    parameters = {"instruction": instruction} if instruction else {}
    scores = handler({"inputs": {"source_sentence": source, "sentences": sentences}, "parameters": parameters})
    assert isinstance(scores, list) and len(scores) == 3 and all(isinstance(score, float) for score in scores)
    expected = (model.encode([source], instruction=instruction) @ model.encode(local).T)[0]
    torch.testing.assert_close(torch.tensor(scores), expected, atol=1e-4, rtol=0)
    # the instruction is the query's alone: the sentences are documents, on the default instruction
    if instruction:
        plain = handler({"inputs": {"source_sentence": source, "sentences": sentences}})
        assert max(abs(a - b) for a, b in zip(scores, plain, strict=True)) > 1e-4


def test_a_time_range_reaches_the_model_and_a_bad_one_names_its_field(handler, model, media, media_server):
    span = {"video_start": 2.5, "video_end": 7.0}
    rows = handler({"inputs": [{"video": f"{media_server}/long.mp4", **span}, {"text": "a square"}]})
    assert_agrees(rows, model.encode([{"video": str(media["long_video"]), **span}, "a square"]))
    assert F.cosine_similarity(as_tensor(rows)[:1], model.encode([str(media["long_video"])])).item() < 0.9999
    late = {"inputs": ["fine", {"video": f"{media_server}/long.mp4", "video_start": 3, "video_end": 60}]}
    assert re.match(
        r"inputs\[1\]\.video_end: video .* refused: video_end=60 s is after the video's end", error_of(handler, late)
    )
    alone = {"inputs": [{"text": "a square", "video_start": 1}]}
    assert error_of(handler, alone).startswith("inputs[0].video_start: video_start needs a video file or URL")


def test_sentence_similarity_with_string_items(handler, model):
    scores = handler({"inputs": {"source_sentence": "hello", "sentences": ["hello", "goodbye"]}})
    expected = (model.encode(["hello"]) @ model.encode(["hello", "goodbye"]).T)[0]
    torch.testing.assert_close(torch.tensor(scores), expected, atol=1e-4, rtol=0)
    assert scores[0] == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------- bad requests


def big(root: str, size: int, declared: bool = True) -> str:
    return f"{root}/big?size={size}&declared={int(declared)}"


# (name, handler: "default" or "strict", request builder (media, root) -> data, expected message start)
BAD_REQUESTS = [
    ("data not a dict", "default", lambda m, r: ["text"], 'request: expected a JSON object with an "inputs" field'),
    ("missing inputs", "default", lambda m, r: {"parameters": {}}, "inputs: missing (the request must be a JSON"),
    ("unknown field", "default", lambda m, r: {"inputs": "x", "options": {}}, "options: unknown field"),
    ("inputs a number", "default", lambda m, r: {"inputs": 5}, "inputs: expected a string, an item object"),
    ("inputs null", "default", lambda m, r: {"inputs": None}, "inputs: expected a string"),
    ("empty list", "default", lambda m, r: {"inputs": []}, "inputs: the list is empty"),
    ("too many inputs", "strict", lambda m, r: {"inputs": ["a"] * 4}, "inputs: at most 3 inputs per request, got 4"),
    (
        "payload too large",
        "strict",
        lambda m, r: {"inputs": ["x" * 200_000]},
        "request: payload of 200015 bytes exceeds the limit of 100000 bytes",
    ),
    (
        "text too long",
        "strict",
        lambda m, r: {"inputs": ["ok", "x" * 101]},
        "inputs[1]: text of 101 characters exceeds the limit of 100",
    ),
    (
        "item text too long",
        "strict",
        lambda m, r: {"inputs": [{"text": "x" * 101}]},
        "inputs[0].text: text of 101 characters exceeds the limit of 100",
    ),
    (
        "unknown item key",
        "default",
        lambda m, r: {"inputs": ["ok", {"text": "x", "caption": "y"}]},
        "inputs[1].caption: unknown key (the keys are text, image, video, video_start, video_end)",
    ),
    (
        "instruction inside an item",
        "default",
        lambda m, r: {"inputs": [{"text": "x", "instruction": "y"}]},
        "inputs[0].instruction: unknown key",
    ),
    ("item a list", "default", lambda m, r: {"inputs": [["a"]]}, "inputs[0]: expected a string or an object"),
    ("item a number", "default", lambda m, r: {"inputs": [3]}, "inputs[0]: expected a string or an object"),
    ("empty item", "default", lambda m, r: {"inputs": ["ok", {}]}, "inputs[1]: the input has no content"),
    ("blank text", "default", lambda m, r: {"inputs": "  \n"}, "inputs: the input has no content"),
    ("null content", "default", lambda m, r: {"inputs": [{"text": "", "image": None}]}, "inputs[0]: the input has no"),
    ("text not a string", "default", lambda m, r: {"inputs": [{"text": 3}]}, "inputs[0].text: must be a string"),
    ("image not a string", "default", lambda m, r: {"inputs": [{"image": {}}]}, "inputs[0].image: must be a string"),
    ("empty image", "default", lambda m, r: {"inputs": [{"image": " "}]}, "inputs[0].image: is empty"),
    (
        "local image path",
        "default",
        lambda m, r: {"inputs": [{"image": str(m["image"])}]},
        "inputs[0].image: local file paths are not accepted",
    ),
    (
        "relative video path",
        "default",
        lambda m, r: {"inputs": [{"video": "right.mp4"}]},
        "inputs[0].video: local file paths are not accepted",
    ),
    (
        "file URL",
        "default",
        lambda m, r: {"inputs": [{"text": "x", "video": f"file://{m['video']}"}]},
        "inputs[0].video: file:// URLs are not accepted",
    ),
    (
        "ftp URL",
        "default",
        lambda m, r: {"inputs": ["a", "b", {"image": "ftp://example.com/a.png"}]},
        "inputs[2].image: URL scheme 'ftp' is not allowed (allowed: http, https)",
    ),
    (
        "scheme not in the configured list",
        "strict",
        lambda m, r: {"inputs": [{"image": "https://example.com/a.png"}]},
        "inputs[0].image: URL scheme 'https' is not allowed (allowed: http)",
    ),
    (
        "redirect to a disallowed scheme",
        "strict",
        lambda m, r: {"inputs": [{"image": f"{r}/redirect?to=https://127.0.0.1:9/a.png"}]},
        "inputs[0].image: redirected to URL scheme 'https', which is not allowed (http)",
    ),
    ("URL without host", "default", lambda m, r: {"inputs": [{"image": "http:///a.png"}]}, "inputs[0].image: the URL"),
    (
        "download 404",
        "default",
        lambda m, r: {"inputs": [{"image": f"{r}/absent.png"}]},
        "inputs[0].image: could not download 'http://127.0.0.1:",
    ),
    (
        "first failed download in request order",
        "default",
        lambda m, r: {
            "inputs": [
                {"image": f"{r}/square.png"},
                {"image": f"{r}/absent-1.png"},
                {"video": f"{r}/right.mp4"},
                {"image": f"{r}/absent-3.png"},
            ]
        },
        "inputs[1].image: could not download",
    ),
    (
        "connection refused",
        "default",
        lambda m, r: {"inputs": [{"image": "http://127.0.0.1:9/a.png"}]},
        "inputs[0].image: could not download 'http://127.0.0.1:9/a.png': ",
    ),
    (
        "declared video download too large",
        "strict",
        lambda m, r: {"inputs": [{"video": big(r, 60_000)}]},
        "inputs[0].video: download exceeds 50000 bytes (60000 bytes declared)",
    ),
    (
        "streamed video download too large",
        "strict",
        lambda m, r: {"inputs": [{"video": big(r, 60_000, declared=False)}]},
        "inputs[0].video: download exceeds 50000 bytes",
    ),
    (
        "image download too large",
        "strict",
        lambda m, r: {"inputs": [{"image": big(r, 10_001, declared=False)}]},
        "inputs[0].image: download exceeds 10000 bytes",
    ),
    (
        "data URI too large",
        "strict",
        lambda m, r: {"inputs": [{"image": "data:image/png;base64," + base64.b64encode(b"\0" * 10_001).decode()}]},
        "inputs[0].image: data URI exceeds 10000 bytes",
    ),
    (
        "download timeout",
        "strict",
        lambda m, r: {"inputs": [{"image": f"{r}/slow"}]},
        "inputs[0].image: could not download 'http://127.0.0.1:",
    ),
    (
        "download slower than the timeout in all",
        "strict",
        lambda m, r: {"inputs": [{"video": f"{r}/trickle"}]},
        "inputs[0].video: could not download 'http://127.0.0.1:",
    ),
    (
        "broken base64",
        "default",
        lambda m, r: {"inputs": [{"image": "data:image/png;base64,iVBORw0K@@@"}]},
        "inputs[0].image: the data URI is not valid base64",
    ),
    (
        "data URI without base64",
        "default",
        lambda m, r: {"inputs": [{"image": "data:image/png,abc"}]},
        "inputs[0].image: only base64 data URIs are accepted",
    ),
    (
        "malformed data URI",
        "default",
        lambda m, r: {"inputs": [{"image": "data:image/png;base64"}]},
        "inputs[0].image: malformed data URI",
    ),
    (
        "video data URI given as image",
        "default",
        lambda m, r: {"inputs": [{"image": data_uri(m["video"], "video/mp4")}]},
        "inputs[0].image: expected a data:image/... URI, got media type 'video/mp4'",
    ),
    (
        "text file as a video data URI",
        "default",
        lambda m, r: {"inputs": ["ok", {"text": "x", "video": data_uri(m["text_as_video"], "video/mp4")}]},
        "inputs[1].video: could not read video 'data:video/mp4;base64,...': not a readable video",
    ),
    (
        "truncated image URL",
        "default",
        lambda m, r: {"inputs": ["ok", {"image": f"{r}/truncated.png"}]},
        "inputs[1].image: could not read image 'http://127.0.0.1:",
    ),
    (
        "one-frame video URL",
        "default",
        lambda m, r: {"inputs": {"video": f"{r}/one.mp4"}},
        "inputs.video: could not read video 'http://127.0.0.1:",
    ),
    ("parameters not an object", "default", lambda m, r: {"inputs": "x", "parameters": [1]}, "parameters: expected"),
    (
        "unknown parameter",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"colour": "red"}},
        "parameters.colour: unknown parameter (the parameters are instruction, fps, max_frames",
    ),
    (
        "max_length is not a parameter",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_length": 10}},
        "parameters.max_length: unknown parameter",
    ),
    (
        "max_frames out of bounds",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_frames": 500}},
        "parameters.max_frames: must be an integer from 2 to 64, got 500",
    ),
    (
        "max_frames a string",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_frames": "8"}},
        'parameters.max_frames: must be an integer from 2 to 64, got "8"',
    ),
    (
        "max_frames a fraction",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_frames": 4.5}},
        "parameters.max_frames: must be an integer from 2 to 64, got 4.5",
    ),
    (
        "max_frames a boolean",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_frames": True}},
        "parameters.max_frames: must be an integer from 2 to 64, got true",
    ),
    (
        "fps too high",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"fps": 20}},
        "parameters.fps: must be a number greater than 0 and at most 8, got 20",
    ),
    (
        "fps zero",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"fps": 0}},
        "parameters.fps: must be a number greater than 0",
    ),
    (
        "fps a string",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"fps": "fast"}},
        'parameters.fps: must be a number greater than 0 and at most 8, got "fast"',
    ),
    (
        "max_pixels too high",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"max_pixels": 1281 * 28 * 28}},
        "parameters.max_pixels: must be an integer from 784 to 1003520, got 1004304",
    ),
    (
        "negative image_max_pixels",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"image_max_pixels": -5}},
        "parameters.image_max_pixels: must be an integer from 784 to 1003520, got -5",
    ),
    (
        "total_pixels too high",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"total_pixels": 64 * 1003520 + 1}},
        "parameters.total_pixels: must be an integer from 784 to 64225280",
    ),
    (
        "min above max",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"image_min_pixels": 900, "image_max_pixels": 800}},
        "parameters.image_min_pixels: must not exceed image_max_pixels (800), got 900",
    ),
    (
        "instruction not a string",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"instruction": 5}},
        "parameters.instruction: must be a non-empty string, got 5",
    ),
    (
        "blank instruction",
        "default",
        lambda m, r: {"inputs": "x", "parameters": {"instruction": " "}},
        "parameters.instruction: must be a non-empty string",
    ),
    (
        "instruction too long",
        "strict",
        lambda m, r: {"inputs": "x", "parameters": {"instruction": "y" * 101}},
        "parameters.instruction: text of 101 characters exceeds the limit of 100",
    ),
    (
        "similarity without sentences",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x"}},
        "inputs.sentences: missing",
    ),
    (
        "similarity without source",
        "default",
        lambda m, r: {"inputs": {"sentences": ["x"]}},
        "inputs.source_sentence: missing",
    ),
    (
        "similarity with empty sentences",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": []}},
        "inputs.sentences: the list is empty",
    ),
    (
        "similarity with sentences not a list",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": "y"}},
        "inputs.sentences: expected a list of items, got string",
    ),
    (
        "similarity with an unknown key",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": ["y"], "other": 1}},
        "inputs.other: unknown key (the keys are source_sentence, sentences)",
    ),
    (
        "similarity with too many sentences",
        "strict",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": ["y"] * 4}},
        "inputs.sentences: at most 3 sentences per request, got 4",
    ),
    (
        "similarity with a bad source",
        "default",
        lambda m, r: {"inputs": {"source_sentence": {"image": "ftp://x/a.png"}, "sentences": ["y"]}},
        "inputs.source_sentence.image: URL scheme 'ftp' is not allowed",
    ),
    (
        "similarity with a bad sentence",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": ["y", {"text": "z", "caption": 1}]}},
        "inputs.sentences[1].caption: unknown key",
    ),
    (
        "similarity with a missing download",
        "default",
        lambda m, r: {"inputs": {"source_sentence": "x", "sentences": ["y", "z", {"image": f"{r}/absent.png"}]}},
        "inputs.sentences[2].image: could not download",
    ),
    (
        "similarity with a sentence the model cannot read",
        "default",
        lambda m, r: {
            "inputs": {"source_sentence": "x", "sentences": ["y", {"video": data_uri(m["empty_video"], "video/mp4")}]}
        },
        "inputs.sentences[1].video: could not read video 'data:video/mp4;base64,...': the file is empty (0 bytes)",
    ),
    (
        "similarity with a source the model cannot read",
        "default",
        lambda m, r: {"inputs": {"source_sentence": {"video": f"{r}/notes.txt"}, "sentences": ["y"]}},
        "inputs.source_sentence.video: could not read video 'http://127.0.0.1:",
    ),
]


@pytest.mark.parametrize("name, which, build, expected", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_names_the_field_and_reason(handler, strict, media, media_server, name, which, build, expected):
    started = time.monotonic()
    message = error_of(handler if which == "default" else strict, build(media, media_server))
    assert message.startswith(expected), message
    assert TEMP_PREFIX not in message  # the server's temporary paths are never shown
    assert time.monotonic() - started < 2.5  # timeouts and size caps cut downloads short


def test_download_errors_give_the_reason(handler, strict, media_server):
    assert re.search(
        r"absent\.png': 404 File not found$", error_of(handler, {"inputs": {"image": f"{media_server}/absent.png"}})
    )
    assert error_of(strict, {"inputs": {"image": f"{media_server}/slow"}}).endswith("/slow': timed out after 1 s")
    assert error_of(strict, {"inputs": {"video": f"{media_server}/trickle"}}).endswith("/trickle': timed out after 1 s")


def test_good_requests_still_work_after_errors(handler, strict, model, media, media_server):
    for data in (
        {"inputs": [{"image": f"{media_server}/absent.png"}]},
        {"inputs": {"video": f"{media_server}/one.mp4"}},
    ):
        with pytest.raises(HandlerError):
            handler(data)
    with pytest.raises(HandlerError):
        strict({"inputs": [{"image": f"{media_server}/slow"}]})
    assert_agrees(
        handler({"inputs": ["ok", {"video": f"{media_server}/right.mp4"}]}),
        model.encode(["ok", {"video": str(media["video"])}]),
    )
    assert_agrees(strict({"inputs": [{"video": f"{media_server}/right.mp4"}]}), model.encode([str(media["video"])]))


def test_concurrent_requests(handler, model, media, media_server):
    from concurrent.futures import ThreadPoolExecutor

    requests = [
        {"inputs": [f"text {i}", {"image": f"{media_server}/square.png", "text": str(i)}]} for i in range(4)
    ] + [{"inputs": [{"image": f"{media_server}/absent.png"}]}]
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(handler, data) for data in requests]
    for i, future in enumerate(futures[:4]):
        assert_agrees(future.result(), model.encode([f"text {i}", {"image": str(media["image"]), "text": str(i)}]))
    assert isinstance(futures[4].exception(), HandlerError)


def test_media_go_to_a_private_folder_removed_after_the_request(handler, model, media, media_server, monkeypatch):
    removed = []
    rmtree = handler_module.shutil.rmtree

    def spy(path, **kwargs):
        removed.append((path, sorted(os.listdir(path)), os.stat(path).st_mode & 0o777))
        rmtree(path, **kwargs)

    monkeypatch.setattr(handler_module.shutil, "rmtree", spy)
    items = [
        "text",
        {"image": data_uri(media["image"], "image/png")},
        {"text": "x", "video": f"{media_server}/right.mp4"},
    ]
    handler({"inputs": items})
    with pytest.raises(HandlerError):
        handler({"inputs": [{"image": f"{media_server}/square.png"}, {"video": f"{media_server}/notes.txt"}]})
    handler({"inputs": "text only"})  # no media, no folder
    assert [(files, mode) for _, files, mode in removed] == [
        (["0-image.png", "1-video.mp4"], 0o700),
        (["0-image.png", "1-video.mp4"], 0o700),  # notes.txt is served as text/plain: named as a video anyway
    ]
    for path, _, _ in removed:
        assert os.path.dirname(path) == tempfile.gettempdir() and os.path.basename(path).startswith(TEMP_PREFIX)
        assert not os.path.exists(path)


# ---------------------------------------------------------------------- limits


def test_limits_defaults_env_and_overrides(monkeypatch):
    defaults = HandlerLimits()
    assert (defaults.max_inputs, defaults.max_payload_bytes, defaults.allowed_schemes) == (
        32,
        20_000_000,
        ("http", "https"),
    )
    assert (defaults.download_timeout, defaults.max_image_bytes, defaults.max_video_bytes) == (
        10,
        20_000_000,
        200_000_000,
    )
    assert (defaults.max_text_chars, defaults.max_fps, defaults.max_frames, defaults.max_pixels) == (
        20_000,
        8,
        64,
        1003520,
    )
    assert defaults.allow_private_hosts is False
    environ = {"GVE_MAX_INPUTS": "5", "GVE_ALLOWED_SCHEMES": " HTTPS ", "GVE_DOWNLOAD_TIMEOUT": "2.5", "OTHER": "x"}
    limits = HandlerLimits.from_env(environ)
    assert (limits.max_inputs, limits.allowed_schemes, limits.download_timeout) == (5, ("https",), 2.5)
    assert HandlerLimits.from_env({"GVE_ALLOW_PRIVATE_HOSTS": "true"}).allow_private_hosts is True
    assert HandlerLimits.from_env(environ, max_inputs=7).max_inputs == 7  # arguments win over the environment
    monkeypatch.setenv("GVE_MAX_FRAMES", "16")
    assert HandlerLimits.from_env().max_frames == 16
    with pytest.raises(AttributeError):
        limits.max_inputs = 9  # frozen


@pytest.mark.parametrize(
    "environ, overrides, error, match",
    [
        ({"GVE_MAX_INPUTS": "many"}, {}, ValueError, "GVE_MAX_INPUTS: expected an integer, got 'many'"),
        ({}, {"allowed_schemes": "http,ftp"}, ValueError, "allowed_schemes: must be some of http, https"),
        ({}, {"allowed_schemes": ()}, ValueError, "allowed_schemes: must be some of http, https"),
        ({}, {"max_inputs": 0}, ValueError, "max_inputs: must be positive"),
        ({}, {"max_fps": "8"}, ValueError, "max_fps: must be a number"),
        ({}, {"max_frames": 1}, ValueError, "max_frames: must be at least 2"),
        ({}, {"max_input": 3}, TypeError, r"unknown limit\(s\) \['max_input'\]"),
        ({"GVE_ALLOW_PRIVATE_HOSTS": "maybe"}, {}, ValueError, "GVE_ALLOW_PRIVATE_HOSTS: expected true or false"),
    ],
)
def test_bad_limits_are_refused(environ, overrides, error, match):
    with pytest.raises(error, match=match):
        HandlerLimits.from_env(environ, **overrides)


def test_unknown_limit_is_refused_before_loading():
    with pytest.raises(TypeError, match="unknown limit"):
        EndpointHandler("/nonexistent", max_input=3)


def test_limits_table_documents_every_limit_and_its_default():
    table = re.findall(r"^(\| `[a-z_]+` \| `GVE_.*)$", handler_module.__doc__, flags=re.M)
    defaults = HandlerLimits()
    documented = {}
    for row in table:
        name, variable, default = (cell.strip().strip("`") for cell in row.strip("|").split("|")[:3])
        assert variable == "GVE_" + name.upper()
        documented[name] = default.split(" ")[0]
    assert documented.keys() == {field.name for field in dataclasses.fields(HandlerLimits)}
    for name, default in documented.items():
        value = getattr(defaults, name)
        assert default == (",".join(value) if isinstance(value, tuple) else str(value).removesuffix(".0")), name
    readme = (ROOT / "README.md").read_text()
    assert "\n".join(table) in readme  # the README carries the same table


@pytest.fixture(scope="module")
def guarded(tiny_path):
    """A handler with the default limits: no downloads from internal addresses."""
    return EndpointHandler(str(tiny_path))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_internal_hosts_are_refused_by_default(guarded, host):
    url = f"http://{host}:9/latest/meta-data.png"
    message = error_of(guarded, {"inputs": ["a text", {"image": url}]})
    assert message.startswith("inputs[1].image: the host of ")
    assert "is an internal address" in message and "allow_private_hosts" in message


def test_redirects_to_internal_hosts_are_refused(guarded, media_server):
    """The check runs at every hop (here the first hop is already internal, and refused before any request)."""
    message = error_of(guarded, {"inputs": [{"video": f"{media_server}/redirect?to=http://10.0.0.1/x.mp4"}]})
    assert message.startswith("inputs[0].video: the host of ") and "internal address" in message


def test_handler_uses_the_remote_code_beside_it():
    """One home for the limits, the fetcher and the input names: the handler imports the remote code next to it
    (as transformers does) instead of keeping copies, and does no network I/O of its own."""
    processing = handler_module.processing
    assert (ROOT / "processing_gve.py").read_text() == open(processing.__file__).read()
    assert issubclass(HandlerLimits, processing.MediaLimits)
    assert handler_module.CONTROLS == (*processing.VIDEO_OPTIONS, *processing.IMAGE_OPTIONS)
    source = (ROOT / "handler.py").read_text()
    for network_code in ("import requests", "import urllib", "import socket", "http.client", "getaddrinfo"):
        assert network_code not in source
