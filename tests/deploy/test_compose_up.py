"""`compose up` of the project's own docker-compose.yml with podman-compose: the service and
Prometheus, which must find it through DNS, scrape it and hold its histograms; with the
second model (profile `dsprites`) beside it once model/vae_dsprites.pt is in the repository,
each scraped as its own job.

The CI override (scripts/container/compose.ci.yml) swaps only where the images come from:
no registry is reachable here. Grafana stays in the compose file for users, but no Grafana
image can be had here, so CI does not start it (its dashboard's queries are checked against
a real Prometheus in test_prometheus.py).
"""

import functools
import json
import math
import os
import subprocess

import pytest
import yaml

from tests.deploy.containers import COMPOSE, SCRIPTS, podman_env, run_script
from tests.deploy.helpers import (
    ROOT,
    PrometheusServer,
    free_port,
    http_get,
    require_tool,
    run_tool,
    wait_until,
)
from tests.deploy.test_container import DSPRITES_MODEL, require_dsprites_model

OVERRIDE = SCRIPTS / "compose.ci.yml"
SERVICES = ["vae-serve", "prometheus"]
JOB = "vae-serve"
DSPRITES = "vae-serve-dsprites"  # service and Prometheus job, under the profile `dsprites`


def test_the_ci_override_swaps_only_image_sources():
    services = yaml.safe_load(OVERRIDE.read_text())["services"]
    assert set(services) == {*SERVICES, DSPRITES}
    assert all(set(service) == {"image"} for service in services.values())
    assert set(services) <= set(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_prometheus_containerfile_lints_clean():
    result = run_tool(
        "hadolint", "--failure-threshold", "info", SCRIPTS / "prometheus.Containerfile"
    )
    assert result.returncode == 0, result.stdout + result.stderr


class Stack:
    """podman-compose on docker-compose.yml + the CI override, as its own project."""

    def __init__(self, profiles: list[str]) -> None:
        self.project = f"vae-ci-{os.getpid()}"
        self.profiles = profiles
        self.ports = {"SERVE_PORT": free_port(), "PROMETHEUS_PORT": free_port()}
        self.ports["DSPRITES_PORT"] = free_port()

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        argv = [require_tool("podman-compose"), "-p", self.project, "-f", str(COMPOSE)]
        argv += [f"--profile={profile}" for profile in self.profiles]  # `down` too
        argv += ["-f", str(OVERRIDE), *args]
        env = podman_env() | {k: str(v) for k, v in self.ports.items()}
        run = {"capture_output": True, "text": True, "timeout": timeout}
        return subprocess.run(argv, env=env, cwd=ROOT, **run)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['SERVE_PORT']}"


def answers_ready(url: str) -> bool:
    return http_get(url + "/readyz", timeout=2)[0] == 200


def dsprites_model_committed() -> bool:
    return (ROOT / DSPRITES_MODEL).is_file()


@pytest.fixture(scope="module")
def stack(image):
    run_script("prometheus-image.sh")
    # the second model only once its file is there: before, it could only crash-loop
    with_dsprites = dsprites_model_committed()
    stack = Stack(["dsprites"] if with_dsprites else [])
    try:
        up = stack.compose("up", "-d", *SERVICES, *([DSPRITES] if with_dsprites else []))
        assert up.returncode == 0, up.stdout + up.stderr
        yield stack
    finally:
        stack.compose("down", "-v")


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_prometheus_scrapes_the_composed_service_and_its_histograms(stack):
    prometheus = PrometheusServer(stack.ports["PROMETHEUS_PORT"])
    wait_until(lambda: http_get(stack.url + "/readyz", timeout=2)[0] == 200, 90, "vae-serve ready")

    def target_up():  # found through the compose network's DNS, scraped every 15 s
        targets = prometheus.api("targets")["activeTargets"]
        return [t for t in targets if t["labels"]["job"] == JOB and t["health"] == "up"]

    (target,) = wait_until(target_up, 60, "the vae-serve target up", interval=1)
    assert target["discoveredLabels"]["__meta_dns_name"] == "vae-serve"

    for seed in range(20):
        assert http_get(f"{stack.url}/sample?n=8&seed={seed}")[0] == 200
    median = (
        "histogram_quantile(0.5, sum by (le) "
        '(vae_http_request_duration_seconds_bucket{route="/sample"}))'
    )

    def scraped_after_traffic():
        result = prometheus.query(median)
        return result if result and math.isfinite(float(result[0]["value"][1])) else None

    (sample,) = wait_until(scraped_after_traffic, 45, f"data for {median}", interval=1)
    assert 0 < float(sample["value"][1]) < 10
    (batches,) = prometheus.query('sum(vae_batch_size_count{operation="decode"})')
    assert float(batches["value"][1]) >= 1


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_prometheus_scrapes_the_second_model_beside_the_first(stack):
    require_dsprites_model()
    prometheus = PrometheusServer(stack.ports["PROMETHEUS_PORT"])
    dsprites_url = f"http://127.0.0.1:{stack.ports['DSPRITES_PORT']}"
    for url in (stack.url, dsprites_url):
        wait_until(functools.partial(answers_ready, url), 90, f"{url}/readyz 200")
    status, body = http_get(dsprites_url + "/model")
    assert status == 200 and json.loads(body)["contract"]["image_shape"] == [1, 64, 64]

    def both_up():
        targets = prometheus.api("targets")["activeTargets"]
        up = {t["labels"]["job"]: t for t in targets if t["health"] == "up"}
        return up if {JOB, DSPRITES} <= set(up) else None

    up = wait_until(both_up, 60, f"the {JOB} and {DSPRITES} targets up", interval=1)
    assert {job: up[job]["discoveredLabels"]["__meta_dns_name"] for job in (JOB, DSPRITES)} == {
        JOB: JOB,
        DSPRITES: DSPRITES,
    }
    assert up[JOB]["labels"]["instance"] != up[DSPRITES]["labels"]["instance"]
    readiness = prometheus.query("vae_ready")
    assert {s["metric"]["job"]: s["value"][1] for s in readiness} == {JOB: "1", DSPRITES: "1"}
