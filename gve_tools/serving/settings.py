"""What `scripts/serve.py` sets (`ServeSettings`), without Ray: the command line reads its defaults from here, and
the deployment (`gve_tools.serving.app`) runs with it."""

from dataclasses import dataclass, field
from typing import Any

from gve_tools.errors import GVEToolsError
from gve_tools.loopback import HOST

DIRECT_INGRESS_ALONE = (
    "--direct-ingress serves one replica on a local Ray that this command starts: drop --address, --replicas "
    "and --max-replicas, or drop --direct-ingress"
)


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
    direct_ingress: bool = False

    def check_direct_ingress(self, address: str | None = None, ray_running: bool = False) -> None:
        """Refuse direct ingress anywhere but one replica on a local Ray that this process starts (the command
        line checks before Ray starts; `app.start` again, with whether Ray already runs)."""
        if self.direct_ingress and (address or ray_running or self.replicas != 1 or self.max_replicas is not None):
            raise GVEToolsError(DIRECT_INGRESS_ALONE)

    def ray_environment(self) -> dict[str, str]:
        """Ray Serve's variables for this mode, to be set before Ray starts and before `ray.serve` is imported
        (Serve reads them once, in each of its processes).

        Direct ingress is Ray Serve's high-throughput mode (`RAY_SERVE_THROUGHPUT_OPTIMIZED`, experimental in
        Ray 2.60): the replica answers HTTP itself, without the proxy's hop, which costs 7-10 ms of CPU a
        request on this project's CPU machine (benchmarks/SERVING.md). Its port comes from a range, pinned here
        to `port`, on 127.0.0.1; a restarted replica takes the same port at once (no quarantine: that is for
        HAProxy, which this mode does not use).
        """
        if not self.direct_ingress:
            return {}
        return {
            "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
            "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
            "RAY_SERVE_DEFAULT_HTTP_HOST": HOST,
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(self.port),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(self.port + 1),  # Serve's range excludes its end
            "RAY_SERVE_PORT_QUARANTINE_S": "0",
        }
