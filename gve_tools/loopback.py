"""Servers on 127.0.0.1 that the tooling and its tests start: a free port, a static file server, waiting for a
child server to answer, and stopping one. Standard library only: `gve_tools.vllm_engine` runs it in vLLM's own
environment."""

import functools
import http.server
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_folder(folder: str | Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    """A static file server over `folder` on 127.0.0.1, in a daemon thread: its base URL and the server (whose
    `shutdown()` stops it)."""
    server = http.server.ThreadingHTTPServer((HOST, 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://{HOST}:{server.server_address[1]}", server


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float, what: str = "the server") -> None:
    """Wait until `url` answers, while `process` (the server) runs. Raises `RuntimeError` when the process exits
    first, `TimeoutError` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it answered {url}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer {url} in {timeout:g} s") from None
            time.sleep(0.5)


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a child server, and kill it if it has not exited after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
