"""`scripts/serve.py --direct-ingress`: the replica answers on the given port itself (no proxy in the path), with
`model.encode`'s embeddings and Serve's 503 bound. Its own local Ray, in a subprocess of its own."""

import os
import subprocess
import sys

import pytest

from gve_tools.loopback import free_port, stop, wait_until_serving
from gve_tools.repo import ROOT
from tests.serving.conftest import get, post
from tests.serving.test_server import assert_agrees, assert_overload_answered_503

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def listening_pid(port: int) -> int | None:
    """The process whose socket listens on 127.0.0.1:`port` (from /proc: the socket's inode, then its owner)."""
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
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
    log_path = tmp_path_factory.mktemp("direct-ingress") / "serve.log"  # a file: Ray's output would fill a pipe
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_serving(f"{url}/health", process, 240, "the direct-ingress server")
            except (RuntimeError, TimeoutError) as error:
                pytest.fail(f"{error}:\n{log_path.read_text()[-3000:]}")
            yield url
        finally:
            stop(process, timeout=120)  # Serve and its local Ray shut down first


def test_the_replica_itself_answers_with_encodes_embedding(direct_server, model):
    status, stats = get(f"{direct_server}/stats")
    assert status == 200
    assert listening_pid(int(direct_server.rsplit(":", 1)[1])) == stats["pid"]  # no proxy hop
    status, _, rows = post(f"{direct_server}/", {"inputs": ["a red square moving right", "blue"]})
    assert status == 200
    assert_agrees(rows, model.encode(["a red square moving right", "blue"]))


def test_overload_is_answered_503_with_retry_after(direct_server, model, media, media_server):
    assert_overload_answered_503(direct_server, 2 + 2, model, media, media_server)  # the fixture's queue bounds
