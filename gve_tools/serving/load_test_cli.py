"""The `load_test` command (`scripts/load_test.py`): the benchmark's mixed corpus, sent as single-item requests by N
clients to a GVE server on 127.0.0.1, every answer checked against one offline `model.encode` call over the same
items (which is also the throughput it is compared with).

    python scripts/serve.py --limit allow_private_hosts=true &       # the corpus's videos come from 127.0.0.1
    python scripts/load_test.py --clients 16 --output build/serving-load.json
    python scripts/load_test.py --clients 16 --kill-replica-after 5    # a fault mid-run: Serve restarts the replica
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gve_tools.benchmark.corpus import make_corpus
from gve_tools.benchmark.process import cpu_seconds, peak_rss_mb
from gve_tools.loopback import serve_folder
from gve_tools.models import load_model, resolve_model
from gve_tools.repo import ROOT
from gve_tools.serving.load_test import batch_figures, call, kill_replica_later, run_clients, summarize
from gve_tools.serving.workload import build_workload


def offline(model: Any, cases: list) -> tuple[dict, float, float]:
    """One offline `model.encode` call over the good cases' local inputs: the rows by case, its seconds and the
    CPU seconds it took (this process: its threads are encode's)."""
    good = [index for index, case in enumerate(cases) if case.good]
    began, cpu = time.monotonic(), cpu_seconds()
    rows = model.encode([cases[index].local for index in good], show_progress_bar=False)
    seconds, cpu = time.monotonic() - began, cpu_seconds() - cpu
    return {index: row.double().numpy() for index, row in zip(good, rows, strict=True)}, seconds, cpu


def server_cpu_s(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds each of Serve's processes (replica, proxy, controller) used between two `/stats` answers."""
    used = {}
    for name, info in after.get("processes", {}).items():
        earlier = before.get("processes", {}).get(name, {}).get("cpu_s", 0.0)
        used[name.split(":")[0]] = used.get(name.split(":")[0], 0.0) + info.get("cpu_s", 0.0) - earlier
    return used


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Load-test a GVE server (scripts/serve.py) on 127.0.0.1: N concurrent clients send the "
        "benchmark's mixed corpus as single-item requests (texts, images, videos, composed items, both schemas) "
        "with a share of bad ones, bounded by count and time; every answer is checked against model.encode "
        "(cosine >= 0.9999); prints throughput against one offline model.encode call, p50/p95/p99 latency, "
        "answers by kind, the server's batch sizes and peak memory.",
        epilog="The server must allow downloads from 127.0.0.1 (--limit allow_private_hosts=true): the corpus's "
        "videos are served from a loopback file server this command starts.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (127.0.0.1 only)")
    parser.add_argument("--model", help="the checkpoint the server serves, for the reference (default: bundled)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--requests", type=int, help="most requests to send (default: the workload once)")
    parser.add_argument("--duration", type=float, default=120.0, help="most seconds to send for (default 120)")
    parser.add_argument("--bad-share", type=float, default=0.1, help="share of bad requests (default 0.1)")
    parser.add_argument("--warmup", type=int, default=16, help="requests sent first and not counted (default 16)")
    parser.add_argument("--timeout", type=float, default=180.0, help="client timeout per request, seconds")
    parser.add_argument("--kill-replica-after", type=float, metavar="S", help="SIGKILL the replica S s into the run")
    parser.add_argument("--corpus-dir", type=Path, default=ROOT / "build" / "benchmark-corpus")
    parser.add_argument("--videos", type=int, default=128)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--label", default="", help="a name for this run in the report")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    return parser


def report(figures: dict) -> str:
    """The run's figures as lines of text."""
    run, batches, offline = figures["run"], figures["batches"], figures["offline"]
    good = max(1, run["outcomes"].get("ok", 0))
    lines = [
        f"load test {figures['label']}: {run['requests']} requests ({run['good_requests']} good, "
        f"{run['bad_requests']} bad) from {figures['clients']} clients to {figures['url']}, model {figures['model']}",
        f"offline model.encode over the same {offline['items']} items: {offline['items_per_s']:.2f} items/s "
        f"(one call before the run and one after: {offline['seconds_before_and_after'][0]:.2f} s, "
        f"{offline['seconds_before_and_after'][1]:.2f} s)",
        f"server: {run['items_per_s']:.2f} items/s ({run['items_per_s'] / offline['items_per_s']:.2f}x offline), "
        f"{run['requests_per_s']:.2f} requests/s, {run['wall_s']:.2f} s",
        "latency of good requests: " + ", ".join(f"{k} {v:.3f} s" for k, v in run["latency_s"].items()),
        f"forward passes: {batches['forward_passes']}, mean {batches['mean_batch_size']:.2f} items each, sizes "
        f"{batches['batch_sizes']}",
        "answers: " + ", ".join(f"{kind} {count}" for kind, count in run["outcomes"].items()),
        f"CPU per good item: offline encode {offline['cpu_s_per_item'] * 1000:.1f} ms; server "
        + ", ".join(f"{name} {cpu * 1000 / good:.1f} ms" for name, cpu in figures["server_cpu_s"].items())
        + " (bad requests' share included)",
    ]
    if run["retry_after_on_503"]:
        lines.append(f"503 answers carried Retry-After: {run['retry_after_on_503']}")
    memory = ", ".join(f"{name} {peak:.0f} MB" for name, peak in figures["peak_memory_mb"].items())
    lines.append(f"peak memory (VmHWM): {memory}")
    fault = figures.get("fault")
    if fault:
        lines.append(
            f"fault: replica pid {fault.get('pid')} killed {fault.get('killed_at_s', float('nan')):.1f} s into the "
            f"run; a new replica (pid {fault.get('new_pid')}) answered {fault.get('restart_s', float('nan')):.1f} s "
            f"later; good requests failed: {fault['failed']}, wrong vectors: {fault['wrong_vectors']}, good "
            f"requests answered right: {fault['succeeded']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status, health, _ = call(args.url, path="/health")
    if status != 200:
        print(f"error: {args.url}/health answered {status}: {health}", file=sys.stderr)
        return 1
    items = make_corpus(args.corpus_dir, args.videos, args.images, args.texts)
    media_url, files = serve_folder(args.corpus_dir)
    try:
        cases = build_workload(items, media_url, args.corpus_dir, args.bad_share)
        model = load_model(resolve_model(args.model), device="cpu", dtype="float32")
        model.encode([case.local for case in cases if case.good][:16], show_progress_bar=False)  # warm, untimed
        references, offline_before, offline_cpu = offline(model, cases)
        run_clients(args.url, cases, args.clients, args.warmup, args.duration, args.timeout)
        before = call(args.url, path="/stats")[1]
        fault: dict = {}
        killer = kill_replica_later(args.url, args.kill_replica_after, fault) if args.kill_replica_after else None
        started = time.monotonic()
        results, wall = run_clients(
            args.url, cases, args.clients, args.requests or len(cases), args.duration, args.timeout
        )
        if killer:
            killer.join()
        after = call(args.url, path="/stats")[1]
        offline_after = offline(model, cases)[1]  # again once the server is idle: the machine's load drifts
    finally:
        files.shutdown()
    run = summarize(cases, results, references, wall)
    figures = {
        "label": args.label,
        "url": args.url,
        "model": health["model"],
        "clients": args.clients,
        "offline": {
            "items": len(references),
            "seconds_before_and_after": [offline_before, offline_after],
            "items_per_s": 2 * len(references) / (offline_before + offline_after),
            "cpu_s_per_item": offline_cpu / len(references),
        },
        "server_cpu_s": server_cpu_s(before, after),
        "run": run,
        "batches": batch_figures(before, after),
        "server_settings": after.get("settings"),
        "peak_memory_mb": {
            **{name.split(":")[0]: info["peak_mb"] for name, info in after.get("processes", {}).items()},
            "load test (this process, with its reference model)": peak_rss_mb(),
        },
    }
    if args.kill_replica_after:
        good = [result for result in results if cases[result.case].good]
        outcomes = run["outcomes"]
        fault["killed_at_s"] = fault.get("killed_at", started) - started
        fault.pop("killed_at", None)
        fault["succeeded"] = outcomes.get("ok", 0)
        fault["wrong_vectors"] = outcomes.get("wrong vector", 0)
        fault["failed"] = len(good) - fault["succeeded"] - fault["wrong_vectors"]
        figures["fault"] = fault
    text = report(figures)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({**figures, "report": text}, indent=2, default=str) + "\n")
    return 0
