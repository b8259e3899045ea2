"""`scripts/serve.py --direct-ingress`: the replica answers on the given port itself (no proxy in the path), with
`model.encode`'s embeddings and Serve's 503 bound. Its own local Ray, in a subprocess of its own."""

import os
import sys
from pathlib import Path

import pytest

from gve_tools.loopback import free_port
from gve_tools.repo import ROOT
from tests.servers import started
from tests.serving.conftest import get, post
from tests.serving.test_server import assert_agrees, assert_overload_answered_503

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def listening_pid(port: int) -> int | None:
    """The process whose socket listens on 127.0.0.1:`port` (from /proc: the socket's inode, then its owner)."""
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if inodes & {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}:
                return int(pid)
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def direct_server(tiny_path, tmp_path_factory):
    port = free_port()
    command = [sys.executable, str(ROOT / "scripts" / "serve.py"), "--direct-ingress", "--port", str(port)]
    command += ["--model", str(tiny_path), "--dtype", "float32", "--num-cpus", "2", "--cpus-per-replica", "0"]
    command += ["--max-ongoing-requests", "2", "--max-queued-requests", "2", "--duration", "300"]
    command += ["--limit", "allow_private_hosts=true"]
    log_path = tmp_path_factory.mktemp("direct-ingress") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    # stop_timeout: Serve and its local Ray shut down first
    with started(command, f"{url}/health", log_path, 240, "the direct-ingress server", stop_timeout=120):
        yield url


def test_the_replica_itself_answers_with_encodes_embedding(direct_server, model):
    status, stats = get(f"{direct_server}/stats")
    assert status == 200
    assert listening_pid(int(direct_server.rsplit(":", 1)[1])) == stats["pid"]  # no proxy hop
    status, _, rows = post(f"{direct_server}/", {"inputs": ["a red square moving right", "blue"]})
    assert status == 200
    assert_agrees(rows, model.encode(["a red square moving right", "blue"]))


def test_overload_is_answered_503_with_retry_after(direct_server, model, media, media_server):
    assert_overload_answered_503(direct_server, 2 + 2, model, media, media_server)  # the fixture's queue bounds
