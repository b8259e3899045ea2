"""The model side of the server, without Ray: read each request's items ahead of the model, embed items of many
requests together, and count what the forward passes held.

A request is read (checked, fetched and decoded) with the endpoint handler's own rules (`handler.RequestReader`)
and the processor's own preprocessing (`GVEProcessor.load` and `featurize`, as `model.encode` runs them), so each
item leaves `read` as a self-contained `GVEItem`: its prompt carries its instruction and its features carry its
controls. Items of different requests, with different instructions and controls, can then share a forward pass.
"""

import importlib.util
import json
import os
import sys
import threading
import time
from collections import Counter
from types import ModuleType
from typing import Any

from gve_tools.benchmark.process import process_command, process_cpu_s, process_memory_mb
from gve_tools.repo import ROOT


class BadRequest(ValueError):
    """A request the server refuses: its HTTP status, and the handler's message naming the field at fault."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    @property
    def field(self) -> str:
        """The request field at fault: the message's first word."""
        return str(self).split(":", 1)[0]


def handler_module() -> ModuleType:
    """The repository's `handler.py` (the one home of the request rules), imported once by its path."""
    module = sys.modules.get("handler")
    if module is not None and getattr(module, "RequestReader", None) is not None:
        return module
    spec = importlib.util.spec_from_file_location("handler", ROOT / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    return module


def serve_processes() -> dict[str, dict]:
    """Ray Serve's processes on this node (controller, HTTP proxy, replicas) by name and pid, with their memory and
    CPU time."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = process_command(pid)
        except OSError:
            continue
        if command.startswith(("ray::ServeController", "ray::ProxyActor", "ray::ServeReplica")):
            name = f"{command.split()[0][5:].split('.')[0]}:{pid}"
            found[name] = {"pid": int(pid), "cpu_s": process_cpu_s(pid), **process_memory_mb(pid)}
    return found


class Engine:
    """The model, its preprocessing and the handler's request rules, for one server replica.

    Args:
        model_id: a GVE folder or Hub id (None: the bundled tiny model), loaded by `gve_tools.models.load_model`.
        device, dtype: where and how (`load_model`'s; "auto" is bfloat16 on a GPU, float32 on the CPU).
        limits: `HandlerLimits` fields overriding their `GVE_*` variables and the endpoint's defaults.
        workers: threads that decode items, shared by all requests (default: one per core, at most 8).
    """

    def __init__(
        self,
        model_id: str | None = None,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        limits: dict[str, Any] | None = None,
        workers: int | None = None,
    ) -> None:
        from gve_tools.models import load_model, resolve_model

        handler = handler_module()
        self.limits = handler.HandlerLimits.from_env(**(limits or {}))
        self.reader = handler.RequestReader(self.limits)
        self.model_id = resolve_model(model_id)
        self.model = load_model(self.model_id, device=device, dtype=dtype)
        self.processor = self.model.processor
        self.max_length = self.processor.embedding_config.max_length
        if self.limits.max_batch_tokens < self.max_length:
            raise ValueError(f"max_batch_tokens: must be at least the model's max_length ({self.max_length})")
        self.dimension = self.model.config.text_config.hidden_size
        processing = sys.modules[type(self.processor).__module__]
        self.workers = processing.worker_count(workers)
        self.decoders = processing.worker_pool(self.workers)  # encode's own: one torch thread per decoder
        self.stats = Stats()
        self._decoding = 0
        self._lock = threading.Lock()
        self.model.register_forward_pre_hook(self._count_pass, with_kwargs=True)

    def read(self, body: bytes, parse: Any) -> tuple[Any, list]:
        """Check, fetch and decode one request body; returns the checked request and its loaded items.

        `parse(reader, data)` checks the decoded JSON in its schema (`RequestReader.parse` for the Hub's). Runs in
        a thread of its own: downloads wait there, decoding runs in the shared decoder threads, one item each,
        first come first served. Raises `BadRequest` with the handler's message for anything the handler refuses.
        """
        handler = handler_module()
        try:
            self.reader.check_size(len(body))
        except handler.HandlerError as error:
            raise BadRequest(str(error), 413) from None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise BadRequest(f"request: not valid JSON ({str(error)[:200]})") from None
        request = None
        try:
            request = parse(self.reader, data)
            budget = self.processor.decode_budget(self.limits)  # one decoding budget per request, as in encode
            with self.reader.fetched(request) as inputs:
                futures = [
                    self.decoders.submit(self._load, position, item, request, budget)
                    for position, item in enumerate(inputs)
                ]
                try:
                    return request, [future.result() for future in futures]
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        except handler.HandlerError as error:
            raise BadRequest(str(error)) from None
        except ValueError as error:
            named = None if request is None else self.reader.input_error(request, error)
            if named is None:
                raise
            raise BadRequest(str(named)) from None

    def _load(self, position: int, item: dict, request: Any, budget: Any) -> Any:
        """One item as `model.encode`'s workers load it: decoded, rendered and featurized, media released."""
        with self._lock:
            self._decoding += 1
        try:
            loaded = self.processor.load(
                item,
                request.instruction,
                position=position,
                budget=budget,
                max_length=self.max_length,
                **request.controls,
            )
            self.processor.featurize(loaded, self.max_length, release_media=True)
            return loaded
        finally:
            with self._lock:
                self._decoding -= 1

    def embed(self, items: list) -> list:
        """Embed loaded items of any requests together: one collected batch, cut by length and max_batch_tokens
        into the forward passes that waste the least padding (the model's own `encode` batching)."""
        import torch

        with torch.inference_mode():  # as in encode: no autograd state
            ordered = dict(
                self.model._embed_window(
                    list(enumerate(items)),
                    len(items),
                    self.limits.max_batch_tokens,
                    self.max_length,
                    self.model_threads,
                )
            )
        self.stats.collected(len(items))
        return [ordered[index] for index in range(len(items))]

    def model_threads(self) -> int:
        """Intra-op threads for a forward pass on the CPU: the cores the busy decoders leave (as encode does)."""
        import torch

        return max(1, torch.get_num_threads() - min(self.workers, self._decoding))

    def _count_pass(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.stats.forward(int(ids.shape[0]), int(ids.numel()))


class Stats:
    """What the server did: requests by answer, and the forward passes' sizes (thread-safe counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.answers: Counter = Counter()
        self.batch_sizes: Counter = Counter()
        self.collected_sizes: Counter = Counter()
        self.tokens = 0

    def answered(self, status: int) -> None:
        with self._lock:
            self.answers[str(status)] += 1

    def forward(self, rows: int, tokens: int) -> None:
        with self._lock:
            self.batch_sizes[rows] += 1
            self.tokens += tokens

    def collected(self, size: int) -> None:
        with self._lock:
            self.collected_sizes[size] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON, with the mean items per forward pass."""
        with self._lock:
            passes = sum(self.batch_sizes.values())
            items = sum(size * count for size, count in self.batch_sizes.items())
            return {
                "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 3),
                "answers": dict(self.answers),
                "forward_passes": passes,
                "items_embedded": items,
                "mean_batch_size": items / passes if passes else 0.0,
                "batch_sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())},
                "collected_batches": {str(size): count for size, count in sorted(self.collected_sizes.items())},
                "tokens_with_padding": self.tokens,
            }
