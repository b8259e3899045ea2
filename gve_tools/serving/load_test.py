"""The load test's run: N closed-loop clients on 127.0.0.1, bounded by count and by time, every answer checked
against `model.encode`, optionally the replica's process killed mid-run; and the figures it reports.

Each answer is classified: `ok` (200 and cosine >= 0.9999 with the reference), `wrong vector` (200 but not the
reference: an answer lost or swapped), `refused as expected` (a bad request's 4xx naming its field), `refused
wrong` (a bad request answered otherwise), `HTTP 503 (queue full)` (turned away unread, good or bad), or the HTTP
status / exception of a good request that failed.
"""

import http.client
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from gve_tools.benchmark.process import process_command
from gve_tools.serving.workload import Case

MIN_COSINE = 0.9999


@dataclass
class Result:
    case: int  # index in the workload
    sent: float  # seconds since the run started
    latency: float
    status: int  # 0: no HTTP answer
    body: Any  # the JSON answer, or the exception's text
    retry_after: str | None = None


def loopback(url: str) -> tuple[str, int]:
    """The host and port of `url`, which must be on 127.0.0.1: the load test sends nothing anywhere else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the load test sends to http://127.0.0.1 only, got {url!r}")
    return "127.0.0.1", parts.port or 80


def call(url: str, method: str = "GET", path: str = "/", body: bytes | None = None, timeout: float = 30) -> tuple:
    """One request on a fresh loopback connection; returns (status, JSON answer, Retry-After)."""
    host, port = loopback(url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        text = answer.read()
        try:
            content = json.loads(text)
        except ValueError:
            content = text.decode(errors="replace")[:300]
        return answer.status, content, answer.getheader("Retry-After")
    finally:
        connection.close()


def run_clients(
    url: str, cases: list[Case], clients: int, max_requests: int, max_seconds: float, timeout: float = 120
) -> tuple[list[Result], float]:
    """Send the cases in order (cycling) from `clients` threads, each waiting for its answer before its next
    request, until `max_requests` are sent or `max_seconds` have passed; returns the results and the wall time."""
    lock, results, sent = threading.Lock(), [], [0]
    start = time.monotonic()

    def client() -> None:
        while True:
            with lock:
                if sent[0] >= max_requests or time.monotonic() - start >= max_seconds:
                    return
                index = sent[0] % len(cases)
                sent[0] += 1
            case, began = cases[index], time.monotonic()
            try:
                status, content, retry = call(url, "POST", case.route, case.body, timeout)
            except OSError as error:
                status, content, retry = 0, f"{type(error).__name__}: {error}", None
            result = Result(index, began - start, time.monotonic() - began, status, content, retry)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - start


def embedding_of(case: Case, content: Any) -> np.ndarray | None:
    """The one embedding a good request's answer holds, in either schema (None when the shape is wrong)."""
    try:
        row = content["data"][0]["embedding"] if case.route == "/v1/embeddings" else content[0]
        return np.asarray(row, dtype=np.float64)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def refusal_field(case: Case, content: Any) -> str | None:
    """The field a refusal names, in either schema."""
    try:
        return content["error"]["param"] if case.route == "/v1/embeddings" else content["field"]
    except (KeyError, TypeError):
        return None


def classify(case: Case, result: Result, reference: np.ndarray | None) -> str:
    """What one answer was (see the module docstring)."""
    if result.status == 503:  # turned away before it was read: the server's queue was full
        return "HTTP 503 (queue full)"
    if not case.good:
        if 400 <= result.status < 500 and refusal_field(case, result.body) == case.field:
            return "refused as expected"
        return f"refused wrong ({result.status})" if result.status else f"bad request: {result.body}"[:80]
    if result.status != 200:
        return f"HTTP {result.status}" if result.status else str(result.body).split(":", 1)[0]
    row = embedding_of(case, result.body)
    if row is None or row.shape != reference.shape:
        return "wrong vector"
    cosine = float(row @ reference / (np.linalg.norm(row) * np.linalg.norm(reference)))
    return "ok" if cosine >= MIN_COSINE else "wrong vector"


def kill_replica_later(url: str, after: float, record: dict) -> threading.Thread:
    """In `after` seconds, SIGKILL the replica process that answers `/stats` (on this machine), then wait for a
    replica to answer `/health` again; `record` gets the pid, the kill time and the restart's duration."""

    def kill() -> None:
        time.sleep(after)
        pid = call(url, path="/stats")[1]["pid"]
        command = process_command(pid)  # only ever Ray Serve's replica process
        if not command.startswith("ray::ServeReplica"):
            record["error"] = f"pid {pid} is not a Serve replica ({command[:40]!r}); nothing killed"
            return
        os.kill(pid, signal.SIGKILL)
        record.update(pid=pid, killed_at=time.monotonic())
        while time.monotonic() - record["killed_at"] < 300:
            try:
                status, content, _ = call(url, path="/stats", timeout=5)
                if status == 200 and content.get("pid") != pid:
                    record.update(new_pid=content["pid"], restart_s=time.monotonic() - record["killed_at"])
                    return
            except OSError:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def summarize(cases: list[Case], results: list[Result], references: dict[int, np.ndarray], wall: float) -> dict:
    """Throughput, latency percentiles and answers by kind."""
    outcomes: dict[str, int] = {}
    latencies, good_items = [], 0
    for result in results:
        case = cases[result.case]
        outcome = classify(case, result, references.get(result.case))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if case.good and outcome == "ok":
            good_items += 1
            latencies.append(result.latency)
    percentiles = np.percentile(latencies, [50, 95, 99]) if latencies else [float("nan")] * 3
    rejected = [result for result in results if result.status == 503]
    return {
        "requests": len(results),
        "good_requests": sum(cases[result.case].good for result in results),
        "bad_requests": sum(not cases[result.case].good for result in results),
        "wall_s": round(wall, 3),
        "items_per_s": good_items / wall if wall else 0.0,
        "requests_per_s": len(results) / wall if wall else 0.0,
        "latency_s": {"p50": percentiles[0], "p95": percentiles[1], "p99": percentiles[2]},
        "outcomes": dict(sorted(outcomes.items(), key=lambda pair: -pair[1])),
        "retry_after_on_503": sorted({result.retry_after for result in rejected}, key=str),
    }


def batch_figures(before: dict, after: dict) -> dict:
    """The forward passes of a run, from `/stats` before and after it (the after figures alone if the replica
    changed in between)."""
    same = before.get("pid") == after.get("pid")
    sizes = {
        int(size): count - (before["batch_sizes"].get(size, 0) if same else 0)
        for size, count in after["batch_sizes"].items()
    }
    sizes = {size: count for size, count in sorted(sizes.items()) if count}
    passes = sum(sizes.values())
    items = sum(size * count for size, count in sizes.items())
    return {
        "forward_passes": passes,
        "items": items,
        "mean_batch_size": items / passes if passes else 0.0,
        "batch_sizes": sizes,
        "replica_restarted": not same,
    }
