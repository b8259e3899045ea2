"""gve_tools.corpus.cluster: whether a plan fits Ray's CPUs, waiting for CPUs, and unwrapping Ray's exceptions."""

import time

import pytest

from gve_tools.corpus import cluster
from gve_tools.corpus.cluster import PlanError, causes, check_resources, root_message, wait_for_cpus


class FakeRay:
    """What check_resources and wait_for_cpus read from Ray: 2 CPUs, `free` of them available, 0.5 more a look."""

    def __init__(self, free: float, frees: bool = True) -> None:
        self.free, self.frees, self.looks = free, frees, 0

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def available_resources(self) -> dict:
        self.looks += 1
        free = self.free
        if self.frees:
            self.free = min(2.0, self.free + 0.5)
        return {"CPU": free}


def test_a_run_waits_for_the_cpus_an_earlier_run_still_holds(monkeypatch):
    plan = {"concurrency": 1, "actor_cpus": 1, "preprocess_mode": "tasks"}
    ray = FakeRay(free=0.0)
    wait_for_cpus(ray, check_resources(ray, plan))
    assert ray.looks == 5 and ray.free == 2.0  # it returned at the first look that found 2 CPUs free
    monkeypatch.setattr(cluster, "RELEASE_TIMEOUT", 0.3)
    started = time.monotonic()
    wait_for_cpus(FakeRay(free=1.0, frees=False), 2)  # never freed: it waits out the timeout, then goes on
    assert time.monotonic() - started >= 0.3
    with pytest.raises(PlanError, match=r"need 3 CPUs, and Ray has 2: lower --concurrency"):
        check_resources(FakeRay(free=2.0), {**plan, "concurrency": 2})


def test_the_worker_exception_is_found_inside_rays_wrapper():
    exceptions = pytest.importorskip("ray.exceptions")

    worker = ValueError("Expected object or value at position 44\nFailed to read stream iteratively")
    wrapped = exceptions.RayTaskError("ReadJSON", "traceback", worker).as_instanceof_cause()
    wrapped.__cause__ = RuntimeError()  # Ray Data's empty marker, which hides its own frames
    assert list(causes(wrapped)) == [wrapped, worker]
    assert root_message(wrapped) == "Expected object or value at position 44"
    try:
        try:
            raise KeyError("inner")
        except KeyError as error:
            raise RuntimeError("outer") from error
    except RuntimeError as error:
        assert [type(inner) for inner in causes(error)] == [RuntimeError, KeyError]
        assert root_message(error) == "'inner'"
