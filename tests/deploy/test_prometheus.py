"""Prometheus files: promtool checks and alert unit tests, then a real Prometheus server
scraping the service as the image runs it."""

import json
import math
import shutil

import pytest
import yaml

from tests.deploy.helpers import (
    DEPLOY,
    Process,
    PrometheusServer,
    free_port,
    http_get,
    require_tool,
    run_tool,
    wait_until,
)

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "vae-serve.json"
JOB = "vae-serve"


def test_promtool_accepts_config_and_rules():
    for argv in (
        ("check", "config", PROMETHEUS / "prometheus.yml"),
        ("check", "rules", PROMETHEUS / "alerts.yml"),
    ):
        result = run_tool("promtool", *argv)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_as_their_unit_tests_expect():
    result = run_tool("promtool", "test", "rules", "tests/deploy/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus(image_service, tmp_path_factory):
    """A real Prometheus with the project's config, scraping the local service every second."""
    binary = require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job.pop("dns_sd_configs")
    target = f"127.0.0.1:{image_service.port}"
    job.update(scrape_timeout="1s", static_configs=[{"targets": [target]}])
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", workdir)

    port = free_port()
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = Process(argv, {}, workdir / "prometheus.log")
    try:
        server = PrometheusServer(port)

        def ready():
            assert process.popen.poll() is None, f"prometheus exited:\n{process.output()}"
            return http_get(f"{server.url}/-/ready", timeout=2)[0] == 200

        wait_until(ready, 30, "Prometheus /-/ready")
        yield server
    finally:
        process.stop()


def until_data(prometheus, image_service, expr: str, ok) -> list[dict]:
    """Keep traffic flowing until the query's result satisfies ok (rates need two scrapes)."""

    def check():
        image_service.traffic()
        result = prometheus.query(expr)
        return result if ok(result) else None

    return wait_until(check, 45, f"data for {expr}", interval=0.5)


@pytest.mark.slow
def test_prometheus_scrapes_the_service_and_graphs_its_traffic(prometheus, image_service):
    up = until_data(prometheus, image_service, f'up{{job="{JOB}"}}', lambda r: len(r) == 1)
    assert up[0]["value"][1] == "1"

    rates = until_data(
        prometheus,
        image_service,
        "sum by (route) (rate(vae_http_requests_total[5s]))",
        lambda r: any(float(s["value"][1]) > 0 for s in r),
    )
    assert {"/sample", "/healthz"} <= {s["metric"]["route"] for s in rates}

    p99 = until_data(
        prometheus,
        image_service,
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(vae_http_request_duration_seconds_bucket{route="/sample"}[5s])))',
        lambda r: any(math.isfinite(float(s["value"][1])) for s in r),
    )
    assert 0 < float(p99[0]["value"][1]) < 10


@pytest.mark.slow
def test_alert_rules_load_and_evaluate(prometheus, image_service):
    def evaluated():
        (group,) = prometheus.api("rules")["groups"]
        return group if all(r["health"] == "ok" for r in group["rules"]) else None

    group = wait_until(evaluated, 30, "every alert rule evaluated")
    rules = {r["name"]: r for r in group["rules"]}
    assert set(rules) == {
        "VaeServeDown",
        "VaeServeAbsent",
        "VaeServeNotReady",
        "VaeServeHigh5xxRate",
        "VaeServeHighP99Latency",
    }
    for name in ("VaeServeDown", "VaeServeAbsent", "VaeServeNotReady"):
        assert rules[name]["state"] == "inactive", name


@pytest.mark.slow
def test_every_dashboard_query_runs(prometheus):
    panels = json.loads(DASHBOARD.read_text())["panels"]
    for target in (t for p in panels for t in p["targets"]):
        prometheus.query(target["expr"].replace("$__rate_interval", "1m"))
