"""Ray itself, for the corpus pipeline: starting or joining it, whether a plan fits its CPUs, waiting for CPUs an
earlier run still holds, and the exceptions Ray wraps around a worker's."""

import gc
import time
from collections.abc import Iterator

from gve_tools.errors import GVEToolsError
from gve_tools.text import first_line

RELEASE_TIMEOUT = 60.0  # seconds a run waits for an earlier run's actors to give their CPUs back


class PlanError(GVEToolsError, ValueError):
    """The requested actors and tasks do not fit the Ray cluster's resources."""


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Use the running Ray, attach to `address`, or start Ray locally; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return True


def check_resources(ray, options: dict) -> float:
    """Refuse a plan whose actors would hold every CPU: the decoding tasks would then never run.

    `options` has the run's `concurrency`, `actor_cpus` and `preprocess_mode`. Returns the CPUs the plan needs.
    """
    cpus = ray.cluster_resources().get("CPU", 0)
    needed = options["concurrency"] * options["actor_cpus"] + (1 if options["preprocess_mode"] == "tasks" else 0)
    if needed > cpus:
        raise PlanError(
            f"{options['concurrency']} model actor(s) x {options['actor_cpus']} CPU"
            + (" + 1 CPU for the decoding tasks" if options["preprocess_mode"] == "tasks" else "")
            + f" need {needed:g} CPUs, and Ray has {cpus:g}: lower --concurrency or --actor-cpus "
            "(e.g. --actor-cpus 0.5), or give Ray more CPUs."
        )
    return needed


def wait_for_cpus(ray, needed: float) -> None:
    """Wait (at most RELEASE_TIMEOUT seconds) until Ray has `needed` CPUs free.

    Ray Data stops a finished or failed run's model actors asynchronously, and a run started in the same
    process meanwhile (a resume after an error, in a notebook or a test) was seen to wait forever for the CPU
    that a dead run's actor kept.
    """
    deadline = time.monotonic() + RELEASE_TIMEOUT
    gc.collect()  # an old run's actor handles in a reference cycle: the actors are stopped once it is collected
    while ray.available_resources().get("CPU", 0) < needed and time.monotonic() < deadline:
        time.sleep(0.1)
        gc.collect()


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then each exception it wraps, outermost first.

    Ray re-raises a worker's exception as a `RayTaskError` whose `cause` is the worker's exception (unpickled);
    that is followed before `__cause__`, which Ray sets to an empty marker of its own.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "cause", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__


def root_message(error: BaseException) -> str:
    """The first line of the innermost exception `error` wraps: the worker's own message, without what Ray adds."""
    *_, innermost = causes(error)
    return first_line(innermost)
