"""What `scripts/serve.py` sets (`ServeSettings`), without Ray: the command line reads its defaults from here, and
the deployment (`gve_tools.serving.app`) runs with it."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServeSettings:
    """Everything `scripts/serve.py` sets; `gve_tools.serving.cli` documents each option."""

    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    max_batch_size: int = 16
    batch_wait_s: float = 0.25
    max_ongoing_requests: int = 32
    max_queued_requests: int = 64
    retry_after_s: float = 1.0
    request_timeout_s: float = 120.0
    stuck_after_s: float = 300.0
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float = 16.0
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    decode_workers: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    port: int = 8000
