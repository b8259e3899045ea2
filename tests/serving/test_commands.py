"""The serving commands' command lines, without Ray: --help, and limits checked before anything starts."""

import subprocess
import sys

import pytest

from gve_tools.errors import GVEToolsError
from gve_tools.repo import ROOT
from gve_tools.serving.cli import build_parser, parse_limits, settings_from

pytest.importorskip("ray.serve")  # the [serve] extra
from gve_tools.serving.app import deployment_options  # noqa: E402
from gve_tools.serving.settings import ServeSettings  # noqa: E402


@pytest.mark.parametrize("script", ["serve.py", "load_test.py"])
def test_scripts_explain_themselves(script):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "127.0.0.1" in result.stdout and len(result.stdout) > 800


def test_limits_are_parsed_and_checked_as_the_handler_does():
    assert parse_limits(["max_inputs=4", "allow_private_hosts=true", "allowed_schemes=http"]) == {
        "max_inputs": 4,
        "allow_private_hosts": True,
        "allowed_schemes": ("http",),
    }
    with pytest.raises(GVEToolsError, match="GVE_MAX_INPUTS: expected an integer, got 'x'"):
        parse_limits(["max_inputs=x"])
    with pytest.raises(GVEToolsError, match="colour: unknown limit"):
        parse_limits(["colour=red"])


def test_replicas_resources_and_autoscaling_reach_serve():
    args = ["--gpus-per-replica", "0.5", "--min-replicas", "2", "--max-replicas", "4", "--max-queued-requests", "9"]
    options = deployment_options(settings_from(build_parser().parse_args(args)))
    assert options["autoscaling_config"] == {"min_replicas": 2, "max_replicas": 4, "target_ongoing_requests": 16.0}
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.5}
    assert options["max_queued_requests"] == 9 and options["backpressure_config"]["retry_after_s"] == 1.0
    assert deployment_options(ServeSettings(replicas=3))["num_replicas"] == 3


def test_direct_ingress_is_one_local_replica_on_the_given_port(monkeypatch):
    settings = settings_from(build_parser().parse_args(["--direct-ingress", "--port", "8123"]))
    assert settings.ray_environment() == {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DEFAULT_HTTP_HOST": "127.0.0.1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": "8123",
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": "8124",
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
    }
    assert ServeSettings().ray_environment() == {}
    for extra in (["--replicas", "2"], ["--max-replicas", "3"], ["--address", "auto"]):
        with pytest.raises(GVEToolsError, match="--direct-ingress serves one replica on a local Ray"):
            settings_from(build_parser().parse_args(["--direct-ingress", *extra]))
    from gve_tools.serving.app import check_direct_ingress

    for name in settings.ray_environment():
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(GVEToolsError, match="RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=8123 .* before ray.serve"):
        check_direct_ingress(settings, None, ray_running=False)  # this process imported Serve without them
    with pytest.raises(GVEToolsError, match="one replica on a local Ray that this command starts"):
        check_direct_ingress(settings, None, ray_running=True)
