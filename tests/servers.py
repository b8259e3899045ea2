"""A server command started for a test, in a subprocess on 127.0.0.1: the Space's app, `scripts/serve.py`."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gve_tools.loopback import stop, wait_until_serving


@contextlib.contextmanager
def started(
    command: list[str], url: str, log_path: Path, timeout: float, what: str, stop_timeout: float = 15, **popen
) -> Iterator[subprocess.Popen]:
    """`command` running with its output in `log_path` (a file: a server's logs would fill an unread pipe), once
    `url` answers; stopped after. A server that exits or does not answer in `timeout` s fails the test with the
    end of its log."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **popen)
        try:
            try:
                wait_until_serving(url, process, timeout, what)
            except (RuntimeError, TimeoutError) as error:
                pytest.fail(f"{error}:\n{log_path.read_text()[-5000:]}")
            yield process
        finally:
            stop(process, timeout=stop_timeout)
