"""The Ray Serve deployment (`gve_tools.serving`): its schemas, equality with `model.encode`, the handler's error
messages, and 503 under overload. One deployment for the whole session (`tests/serving/conftest.py`)."""

import base64
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F

from gve_tools.serving.engine import handler_module
from tests.serving.conftest import QUEUE, SERVER_LIMITS, get, post

pytestmark = pytest.mark.ray

INSTRUCTION = "Find the video that matches the query."


def data_uri(path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def assert_agrees(rows, expected: torch.Tensor) -> None:
    got = torch.tensor(rows)
    assert got.shape == expected.shape
    assert torch.all(F.cosine_similarity(got, expected) >= 0.9999), F.cosine_similarity(got, expected)


def cases(media, root) -> list[tuple[dict, list, dict]]:
    """(request, the `model.encode` inputs on local files, encode's keyword arguments): every kind of item, with
    instructions and controls that differ between requests."""
    video, long_video, image, image_2 = (str(media[key]) for key in ("video", "long_video", "image", "image_2"))
    span = {"video_start": 2.5, "video_end": 7.0}
    image_controls = {"image_max_pixels": 8 * 28 * 28, "image_min_pixels": 4 * 28 * 28}
    return [
        ({"inputs": "a red square moving right"}, ["a red square moving right"], {}),
        ({"inputs": {"image": data_uri(media["image"], "image/png")}}, [{"image": image}], {}),
        ({"inputs": [{"video": f"{root}/right.mp4"}]}, [{"video": video}], {}),
        (
            {"inputs": {"text": "blue", "image": f"{root}/square.png"}, "parameters": {"instruction": INSTRUCTION}},
            [{"text": "blue", "image": image}],
            {"instruction": INSTRUCTION},
        ),
        (
            {"inputs": {"video": f"{root}/long.mp4"}, "parameters": {"max_frames": 4}},
            [{"video": long_video}],
            {"max_frames": 4},
        ),
        ({"inputs": {"video": f"{root}/long.mp4", **span}}, [{"video": long_video, **span}], {}),
        ({"inputs": ["first text", "second text"]}, ["first text", "second text"], {}),
        (
            {"inputs": {"image": f"{root}/other.jpg"}, "parameters": image_controls},
            [{"image": image_2}],
            image_controls,
        ),
    ]


def batch_sizes(server) -> dict[int, int]:
    return {int(size): count for size, count in get(f"{server}/stats")[1]["batch_sizes"].items()}


def test_health_says_ready(server):
    status, health = get(f"{server}/health")
    assert status == 200 and health["status"] == "ready" and health["dimension"] == 64


def test_concurrent_requests_share_forward_passes_each_with_its_own_embedding(server, model, media, media_server):
    """Requests sent at once, each with other instructions and controls, share forward passes; each answer is
    `model.encode` on its own input (no answer lost or swapped)."""
    requests = cases(media, media_server)
    before = batch_sizes(server)
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda case: post(f"{server}/", case[0]), requests))
    after = batch_sizes(server)
    for (_, local, kwargs), (status, _, rows) in zip(requests, answers, strict=True):
        assert status == 200, rows
        assert_agrees(rows, model.encode(local, **kwargs))
    shared = {size: count - before.get(size, 0) for size, count in after.items() if size > 1}
    assert any(shared.values()), after  # some forward pass held items of more than one request


def test_sentence_similarity(server, model, media, media_server):
    source = {"text": "a red square moving right"}
    sentences = ["a red square", {"video": f"{media_server}/right.mp4"}, {"image": f"{media_server}/square.png"}]
    local = ["a red square", {"video": str(media["video"])}, {"image": str(media["image"])}]
    request = {
        "inputs": {"source_sentence": source, "sentences": sentences},
        "parameters": {"instruction": INSTRUCTION},
    }
    status, _, scores = post(f"{server}/", request)
    assert status == 200 and len(scores) == 3
    expected = (model.encode([source], instruction=INSTRUCTION) @ model.encode(local).T)[0]
    torch.testing.assert_close(torch.tensor(scores), expected, atol=1e-4, rtol=0)


def test_openai_schema(server, model, media, media_server):
    inputs = ["a red square", {"video": f"{media_server}/right.mp4", "text": "moving"}]
    local = ["a red square", {"video": str(media["video"]), "text": "moving"}]
    status, _, answer = post(f"{server}/v1/embeddings", {"input": inputs, "model": "GVE", "user": "u1"})
    assert status == 200, answer
    assert answer["object"] == "list" and answer["model"] == "gve-tiny"
    assert [row["index"] for row in answer["data"]] == [0, 1] and {row["object"] for row in answer["data"]} == {
        "embedding"
    }
    assert_agrees([row["embedding"] for row in answer["data"]], model.encode(local))
    assert answer["usage"]["prompt_tokens"] == answer["usage"]["total_tokens"] > 10
    status, _, packed = post(f"{server}/v1/embeddings", {"input": "a red square", "encoding_format": "base64"})
    assert status == 200, packed
    row = struct.unpack("<64f", base64.b64decode(packed["data"][0]["embedding"]))
    assert_agrees([list(row)], model.encode(["a red square"]))
    status, _, answer = post(f"{server}/v1/embeddings", {"input": "x", "parameters": {"instruction": INSTRUCTION}})
    assert_agrees([answer["data"][0]["embedding"]], model.encode(["x"], instruction=INSTRUCTION))


DEEP = {"inputs": "x", "parameters": {"instruction": "x"}}
for _ in range(40):
    DEEP = {"inputs": [DEEP]}

HUB_ERRORS = {
    "not an item": {"inputs": ["a", 3]},
    "empty list": {"inputs": []},
    "too many inputs": {"inputs": ["x"] * 33},
    "unknown parameter": {"inputs": "x", "parameters": {"colour": 1}},
    "max_frames out of range": {"inputs": "x", "parameters": {"max_frames": 500}},
    "local path": {"inputs": {"image": "/etc/passwd"}},
    "file URL": {"inputs": [{"video": "file:///etc/passwd"}]},
    "ftp URL": {"inputs": {"image": "ftp://example.com/a.png"}},
    "unknown field": {"nope": 1},
    "no sentences": {"inputs": {"source_sentence": "a", "sentences": []}},
    "nested too deep": DEEP,
    "lone surrogate": {"inputs": "\ud800"},
}


@pytest.mark.parametrize("case", HUB_ERRORS)
def test_refusals_carry_the_handlers_message(server, case):
    """A refused request gets 400 with exactly the message the endpoint handler gives, naming the field."""
    handler = handler_module()
    body = HUB_ERRORS[case]
    with pytest.raises(handler.HandlerError) as expected:
        handler.RequestReader(handler.HandlerLimits.from_env(**SERVER_LIMITS)).parse(body)
    status, _, answer = post(f"{server}/", body)
    assert status == 400
    assert answer == {"error": str(expected.value), "field": str(expected.value).split(":", 1)[0]}


@pytest.fixture(scope="module")
def endpoint(tiny_path):
    return handler_module().EndpointHandler(str(tiny_path), **SERVER_LIMITS)


@pytest.mark.parametrize("name", ["truncated.mp4", "notes.mp4", "one.mp4", "missing.png"])
def test_media_failures_carry_the_handlers_message(server, endpoint, media_server, name):
    kind = "image" if name.endswith(".png") else "video"
    body = {"inputs": ["fine", {"text": "t", kind: f"{media_server}/{name}"}]}
    with pytest.raises(ValueError) as expected:
        endpoint(body)
    status, _, answer = post(f"{server}/", body)
    assert status == 400 and answer["error"] == str(expected.value)
    assert answer["field"] == f"inputs[1].{kind}"


def test_openai_refusals_name_the_field(server):
    status, _, answer = post(f"{server}/v1/embeddings", {"input": ["a", 3]})
    assert status == 400 and answer["error"]["param"] == "input[1]"
    assert answer["error"]["message"].startswith("input[1]: expected a string or an object")
    assert answer["error"]["type"] == "invalid_request_error"
    for body, field in (
        ({"input": "a", "dimensions": 7}, "dimensions"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"inputs": "a"}, "inputs"),
        ({"model": "GVE"}, "input"),
        ({"input": 5}, "input"),
    ):
        status, _, answer = post(f"{server}/v1/embeddings", body)
        assert status == 400 and answer["error"]["param"] == field, answer


def test_bad_json_and_oversized_bodies(server):
    status, _, answer = post(f"{server}/", b'{"inputs": ')
    assert status == 400 and answer["error"].startswith("request: not valid JSON")
    big = {"inputs": "x" * SERVER_LIMITS["max_payload_bytes"]}
    status, _, answer = post(f"{server}/", big)
    assert status == 413 and answer["field"] == "request"
    assert answer["error"].endswith(f"exceeds the limit of {SERVER_LIMITS['max_payload_bytes']} bytes")


def assert_overload_answered_503(url: str, bound: int, model, media, media_server) -> None:
    """Three times `bound` (the replica's room plus its queue) requests at once: the rest get 503 and a Retry-After
    at once, and every request taken gets its right embedding."""
    body = {"inputs": {"video": f"{media_server}/long.mp4"}}
    with ThreadPoolExecutor(3 * bound) as pool:
        answers = list(pool.map(lambda _: post(f"{url}/", body), range(3 * bound)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    assert statuses.count(200) >= bound // 2 and statuses.count(503) >= bound
    expected = model.encode([{"video": str(media["long_video"])}])
    for status, headers, content in answers:
        if status == 200:
            assert_agrees(content, expected)
        else:
            assert {key.lower(): value for key, value in headers.items()}["retry-after"] == "1"


def test_overload_is_answered_503_with_retry_after(server, model, media, media_server):
    bound = QUEUE["max_ongoing_requests"] + QUEUE["max_queued_requests"]
    assert_overload_answered_503(server, bound, model, media, media_server)
    assert get(f"{server}/health")[0] == 200
