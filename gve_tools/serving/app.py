"""The Ray Serve deployment: GVE's HTTP API with cross-request batching, bounded queues and health checks.

Routes (on 127.0.0.1 only):
    POST /              the endpoint handler's two Hub schemas (feature-extraction, sentence-similarity)
    POST /v1/embeddings OpenAI's embeddings schema (`gve_tools.serving.openai`)
    GET  /health        readiness: answers 200 once a replica has loaded the model
    GET  /stats         the replica's forward passes and their sizes, its answers, and Serve's memory

How a request flows: the route reads the body in a thread of its own (`Engine.read`: the handler's checks, the
downloads, then the decoding in threads shared by all requests), so a slow URL or a long video holds only its own
request. Each decoded item then goes to `embed_item`, which Ray Serve's `@serve.batch` collects across requests
(up to `max_batch_size`, waiting at most `batch_wait_s`) into one call on the model's one forward thread.

Bounds are Ray Serve's: `max_ongoing_requests` per replica, `max_queued_requests` waiting for one (beyond it,
503 with `Retry-After`), the proxy's `request_timeout_s` (408), and `check_health`, which fails a replica whose
forward pass is stuck so that Serve replaces it (as it replaces a replica whose process died).
"""

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from gve_tools.errors import GVEToolsError
from gve_tools.loopback import free_port
from gve_tools.serving import openai
from gve_tools.serving.engine import BadRequest, Engine, serve_processes
from gve_tools.serving.settings import HOST, ServeSettings

APP_NAME = "gve"
LOGGING = {"log_level": "WARNING", "enable_access_log": False}  # a log line per request costs CPU under load


api = FastAPI(title="GVE embeddings", docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(name="GVE")
@serve.ingress(api)
class GVEDeployment:
    """One replica: the model and its `Engine`, the reading threads and the forward thread."""

    def __init__(self, settings: dict[str, Any]) -> None:
        import ray
        import torch

        self.settings = ServeSettings(**settings)
        device = self.settings.device
        if device == "auto":
            device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.engine = Engine(
            self.settings.model,
            device=device,
            dtype=self.settings.dtype,
            limits=self.settings.limits,
            workers=self.settings.decode_workers,
        )
        model_id = self.engine.model_id  # a folder's name, or a Hub id, as OpenAI's answers name the model
        self.model_name = Path(model_id).name if Path(model_id).is_dir() else model_id
        self.readers = ThreadPoolExecutor(self.settings.max_ongoing_requests, thread_name_prefix="gve-read")
        self.forward = ThreadPoolExecutor(1, thread_name_prefix="gve-forward")
        self.embed_item.set_max_batch_size(self.settings.max_batch_size)
        self.embed_item.set_batch_wait_timeout_s(self.settings.batch_wait_s)
        self.forward_since: float | None = None

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.1)
    async def embed_item(self, items: list) -> list:
        """Items collected across requests, embedded together on the forward thread."""
        return await asyncio.get_running_loop().run_in_executor(self.forward, self._embed, items)

    def _embed(self, items: list) -> list:
        self.forward_since = time.monotonic()
        try:
            return self.engine.embed(items)
        finally:
            self.forward_since = None

    async def _answer(self, http_request: Request, parse: Any, refusal: Any, answer: Any) -> JSONResponse:
        """Read, embed and answer one request; a refused one gets its status and `refusal(message, field)`."""
        import torch

        try:
            body = await http_request.body()
            loop = asyncio.get_running_loop()
            request, items = await loop.run_in_executor(self.readers, self.engine.read, body, parse)
            rows = await asyncio.gather(*(self.embed_item(item) for item in items))
            content, status = answer(request, torch.stack(rows), items), 200
        except BadRequest as error:
            content, status = refusal(str(error), error.field, error.status), error.status
        except Exception as error:  # a replica-side failure (not the request's fault): 500, with its cause
            content, status = refusal(f"server: {type(error).__name__}: {error}", "server", 500), 500
        self.engine.stats.answered(status)
        return JSONResponse(content, status_code=status)

    @api.post("/")
    async def hub(self, http_request: Request) -> JSONResponse:
        """The handler's schemas: `number[][]` (feature-extraction) or `number[]` (sentence-similarity)."""
        return await self._answer(
            http_request,
            lambda reader, data: reader.parse(data),
            lambda message, name, status: {"error": message, "field": name},
            lambda request, embeddings, items: request.answer(embeddings),
        )

    @api.post("/v1/embeddings")
    async def embeddings(self, http_request: Request) -> JSONResponse:
        """OpenAI's embeddings schema."""
        encodings = {}

        def parse(reader: Any, data: Any) -> Any:
            encodings["format"] = data.get("encoding_format") if isinstance(data, dict) else None
            return openai.parse(reader, data, self.engine.dimension)

        def answer(request: Any, embeddings: Any, items: list) -> dict:
            tokens = [int(item.features["attention_mask"].sum()) for item in items]
            return openai.answer(embeddings, tokens, self.model_name, encodings.get("format"))

        return await self._answer(http_request, parse, openai.error_body, answer)

    @api.get("/health")
    async def health(self) -> dict[str, Any]:
        """Ready: this replica has its model (a replica answers only once its constructor has finished)."""
        return {
            "status": "ready",
            "model": self.model_name,
            "dimension": self.engine.dimension,
            "device": str(self.engine.model.device),
        }

    @api.get("/stats")
    async def stats(self) -> dict[str, Any]:
        """This replica's counters (`Engine.stats`), its settings and Serve's processes on its node."""
        return {**self.engine.stats.snapshot(), "settings": asdict(self.settings), "processes": serve_processes()}

    def check_health(self) -> None:
        """Serve's periodic check: a forward pass running longer than `stuck_after_s` fails the replica."""
        since = self.forward_since
        if since is not None and time.monotonic() - since > self.settings.stuck_after_s:
            raise RuntimeError(f"a forward pass has run for more than {self.settings.stuck_after_s:g} s")


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """Ray Serve's options for the deployment: replicas or autoscaling, resources, queue bounds, backpressure."""
    options: dict[str, Any] = {
        "max_ongoing_requests": settings.max_ongoing_requests,
        "max_queued_requests": settings.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": settings.retry_after_s},
        "ray_actor_options": {"num_cpus": settings.cpus_per_replica, "num_gpus": settings.gpus_per_replica},
        "health_check_period_s": 5,
        "health_check_timeout_s": 30,
        "logging_config": LOGGING,
    }
    if settings.max_replicas is not None:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas if settings.min_replicas is not None else 1,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = settings.replicas
    return options


def build_app(settings: ServeSettings) -> Any:
    """The Serve application for `settings`."""
    return GVEDeployment.options(**deployment_options(settings)).bind(asdict(settings))


def start(settings: ServeSettings, address: str | None = None, num_cpus: int | None = None) -> str:
    """Deploy on the running Ray, the cluster at `address`, or a local Ray; returns the URL of the HTTP API.

    Returns once every replica has loaded the model. The HTTP proxy runs on the head node only and binds
    127.0.0.1; with `settings.direct_ingress` there is no proxy in the request path: the one replica answers on
    127.0.0.1 itself. (Ray's own internal ports are Ray's: it has no loopback-only mode and listens on the node's
    interfaces; keep them behind a firewall on a shared network.)
    """
    import ray

    if settings.direct_ingress:
        check_direct_ingress(settings, address, ray.is_initialized())
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
    # With direct ingress Serve still starts its proxy on the head node; it gets a spare loopback port, and the
    # replica takes `settings.port` (`ServeSettings.ray_environment`).
    port = free_port() if settings.direct_ingress else settings.port
    serve.start(
        proxy_location="HeadOnly",
        logging_config=LOGGING,
        http_options={"host": HOST, "port": port, "request_timeout_s": settings.request_timeout_s},
    )
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    return f"http://{HOST}:{settings.port}"


def check_direct_ingress(settings: ServeSettings, address: str | None, ray_running: bool) -> None:
    """Direct ingress needs one replica on a local Ray that this process starts, with Serve's variables set
    before `ray.serve` was imported (`scripts/serve.py --direct-ingress` sets them)."""
    from ray.serve._private import constants

    settings.check_direct_ingress(address, ray_running)
    environment = settings.ray_environment()
    if any(os.environ.get(name) != value for name, value in environment.items()) or not getattr(
        constants, "RAY_SERVE_ENABLE_DIRECT_INGRESS", False
    ):
        variables = " ".join(f"{name}={value}" for name, value in environment.items())
        raise GVEToolsError(f"direct ingress needs Ray >= 2.56 and {variables} set before ray.serve is imported")


def stop(ray_too: bool = False) -> None:
    """Remove the application and Serve; with `ray_too`, also the local Ray that `start` started."""
    import ray

    serve.shutdown()
    if ray_too:
        ray.shutdown()
