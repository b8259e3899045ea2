"""The `serve` command (`scripts/serve.py`): its arguments, then `app.start` and a wait until stopped.

    python scripts/serve.py                                   # the bundled model, local Ray, http://127.0.0.1:8000
    python scripts/serve.py --direct-ingress --batch-wait 0.4 # one machine, one replica, no proxy hop
    python scripts/serve.py --model Alibaba-NLP/GVE-3B --gpus-per-replica 1 --max-batch-size 32
    python scripts/serve.py --address auto --model Alibaba-NLP/GVE-7B --gpus-per-replica 1 \\
        --min-replicas 1 --max-replicas 4                     # a Ray cluster, autoscaled
"""

import argparse
import os
import signal
import sys
import threading
from typing import Any

from gve_tools.errors import GVEToolsError
from gve_tools.serving.settings import ServeSettings

DEFAULTS = ServeSettings()  # the one home of the defaults, shown in --help


def parse_limits(pairs: list[str]) -> dict[str, Any]:
    """`--limit NAME=VALUE` pairs as typed `HandlerLimits` overrides, parsed and checked as the handler parses
    its `GVE_<NAME>` variables (so a bad one stops the command before Ray starts, with the handler's message)."""
    from gve_tools.serving.engine import handler_module

    limits_class = handler_module().HandlerLimits
    known = sorted(limits_class.__dataclass_fields__)
    raw = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GVEToolsError(f"--limit {pair!r}: expected NAME=VALUE, e.g. max_inputs=16")
        if name not in known:
            raise GVEToolsError(f"--limit {name}: unknown limit (the limits are {', '.join(known)})")
        raw[name] = value.strip()
    try:
        parsed = limits_class.from_env(environ={f"GVE_{name.upper()}": value for name, value in raw.items()})
    except (TypeError, ValueError) as error:
        raise GVEToolsError(f"--limit: {error}") from None
    return {name: getattr(parsed, name) for name in raw}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Serve GVE embeddings over HTTP on 127.0.0.1 with Ray Serve: the endpoint handler's two Hub "
        "schemas (POST /), OpenAI's (POST /v1/embeddings), GET /health and GET /stats. Concurrent requests share "
        "forward passes (Ray Serve batching); downloads and decoding run outside the batch loop.",
        epilog="Requests are checked by handler.py's rules and limits (--limit NAME=VALUE sets one, as its GVE_* "
        "variable would). Runs until Ctrl-C or SIGTERM, or --duration. Module docs: python -c 'import "
        "gve_tools.serving.app as m; help(m)'.",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="GVE checkpoint: local folder or Hub id (default: the bundled tiny model)")
    model.add_argument("--device", default=DEFAULTS.device, help="cpu, cuda, or auto: cuda when the replica has a GPU")
    model.add_argument("--dtype", default=DEFAULTS.dtype, help="float32, bfloat16, float16, or auto (bf16 on GPUs)")
    model.add_argument("--decode-workers", type=int, help="decoding threads per replica (default: cores, at most 8)")
    batching = parser.add_argument_group("batching and bounds")
    batching.add_argument(
        "--max-batch-size",
        type=int,
        default=DEFAULTS.max_batch_size,
        help=f"most items per collected batch (1: batching off; default {DEFAULTS.max_batch_size})",
    )
    batching.add_argument(
        "--batch-wait",
        type=float,
        default=DEFAULTS.batch_wait_s,
        help="most seconds a batch waits to fill before it runs: latency traded for larger batches "
        f"(default {DEFAULTS.batch_wait_s:g})",
    )
    batching.add_argument(
        "--max-ongoing-requests",
        type=int,
        default=DEFAULTS.max_ongoing_requests,
        help=f"requests a replica works on at once (default {DEFAULTS.max_ongoing_requests})",
    )
    batching.add_argument(
        "--max-queued-requests",
        type=int,
        default=DEFAULTS.max_queued_requests,
        help="requests waiting for a replica; beyond it the answer is 503 with Retry-After "
        f"(default {DEFAULTS.max_queued_requests})",
    )
    batching.add_argument(
        "--retry-after",
        type=float,
        default=DEFAULTS.retry_after_s,
        help=f"Retry-After seconds of a 503 (default {DEFAULTS.retry_after_s:g})",
    )
    batching.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULTS.request_timeout_s,
        help=f"seconds before a request is answered 408 (default {DEFAULTS.request_timeout_s:g})",
    )
    batching.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE", help="a handler limit")
    cluster = parser.add_argument_group("Ray and replicas")
    cluster.add_argument("--address", help="Ray cluster to join (e.g. auto, ray://head:10001); default: local Ray")
    cluster.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    cluster.add_argument(
        "--port", type=int, default=DEFAULTS.port, help=f"HTTP port on 127.0.0.1 (default {DEFAULTS.port})"
    )
    cluster.add_argument(
        "--replicas",
        type=int,
        default=DEFAULTS.replicas,
        help=f"fixed number of replicas (default {DEFAULTS.replicas})",
    )
    cluster.add_argument("--min-replicas", type=int, help="autoscaling: fewest replicas (with --max-replicas)")
    cluster.add_argument("--max-replicas", type=int, help="autoscaling: most replicas (turns autoscaling on)")
    cluster.add_argument(
        "--target-ongoing-requests",
        type=float,
        default=DEFAULTS.target_ongoing_requests,
        help="autoscaling: ongoing requests per replica",
    )
    cluster.add_argument(
        "--cpus-per-replica", type=float, default=DEFAULTS.cpus_per_replica, help="CPUs Ray reserves per replica"
    )
    cluster.add_argument(
        "--gpus-per-replica", type=float, default=DEFAULTS.gpus_per_replica, help="GPUs per replica, e.g. 1 or 0.5"
    )
    cluster.add_argument(
        "--direct-ingress",
        action="store_true",
        help="one replica on this machine answers HTTP itself, without Serve's proxy hop: about 12%% more "
        "throughput on a CPU (Ray Serve's experimental high-throughput mode; not with --address, --replicas "
        "or autoscaling)",
    )
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    return parser


def settings_from(args: argparse.Namespace) -> Any:
    """The `ServeSettings` of parsed arguments (checked)."""
    limits = parse_limits(args.limit)
    if args.max_batch_size < 1 or args.max_ongoing_requests < 1 or args.max_queued_requests < 0:
        raise GVEToolsError("--max-batch-size and --max-ongoing-requests must be at least 1, the queue at least 0")
    if args.min_replicas is not None and args.max_replicas is None:
        raise GVEToolsError("--min-replicas needs --max-replicas (autoscaling)")
    settings = ServeSettings(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        max_batch_size=args.max_batch_size,
        batch_wait_s=args.batch_wait,
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
        retry_after_s=args.retry_after,
        request_timeout_s=args.request_timeout,
        replicas=args.replicas,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_ongoing_requests=args.target_ongoing_requests,
        cpus_per_replica=args.cpus_per_replica,
        gpus_per_replica=args.gpus_per_replica,
        decode_workers=args.decode_workers,
        limits=limits,
        port=args.port,
        direct_ingress=args.direct_ingress,
    )
    settings.check_direct_ingress(args.address)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except GVEToolsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    os.environ.update(settings.ray_environment())  # before Ray starts and Serve reads its variables
    import ray

    from gve_tools.serving.app import start, stop

    local = not ray.is_initialized() and not args.address
    try:
        url = start(settings, address=args.address, num_cpus=args.num_cpus)
    except GVEToolsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own SIGTERM handler
        signal.signal(signum, lambda *_: stopped.set())
    print(f"GVE serving at {url} (POST /, POST /v1/embeddings, GET /health, GET /stats)", flush=True)
    try:
        stopped.wait(args.duration)
    finally:
        stop(ray_too=local)
    return 0
