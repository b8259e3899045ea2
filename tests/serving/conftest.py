"""The serving tests' fixtures: the deployment on local Ray, started once per session, on the tiny checkpoint."""

import json
import urllib.error
import urllib.request

import pytest

from gve_tools.loopback import free_port
from tests.media_server import serve as serve_media

SERVER_LIMITS = {"allow_private_hosts": True, "max_payload_bytes": 400_000}  # the media server is on loopback
QUEUE = {"max_ongoing_requests": 4, "max_queued_requests": 8}  # small, so that the overload test overflows them


@pytest.fixture(scope="session")
def server(tiny_path):
    """The deployment's URL: local Ray (or the session's), one replica of the tiny checkpoint in float32."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    from gve_tools.serving.app import ServeSettings, start, stop

    started = not ray.is_initialized()
    settings = ServeSettings(
        model=str(tiny_path),
        dtype="float32",
        max_batch_size=8,
        batch_wait_s=0.3,
        cpus_per_replica=0,
        limits=SERVER_LIMITS,
        port=free_port(),
        **QUEUE,
    )
    url = start(settings, num_cpus=2 if started else None)
    yield url
    stop()
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def media_server(media):
    with serve_media(media["image"].parent) as url:
        yield url


def post(url: str, body, timeout: float = 60) -> tuple[int, dict, object]:
    """POST `body` (JSON, or bytes as they are) on loopback; returns the status, the headers and the JSON answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            content = json.loads(text)
        except ValueError:
            content = text.decode(errors="replace")
        return error.code, dict(error.headers), content


def get(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, json.loads(answer.read())
