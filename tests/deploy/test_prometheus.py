"""Prometheus files: promtool checks and alert unit tests, then a real Prometheus server
scraping the service as the image runs it."""

import json
import math
import shutil

import pytest
import yaml

from tests.deploy.helpers import (
    DEPLOY,
    ROOT,
    run_tool,
    running_prometheus,
    wait_until,
)

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "vae-serve.json"
JOB = "vae-serve"
OPTIONAL_JOB = "vae-serve-dsprites"  # the dSprites model: only under its compose profile


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


def test_each_composed_model_has_its_own_job_found_by_its_service_name():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    names = {j["job_name"]: j["dns_sd_configs"][0]["names"] for j in config["scrape_configs"]}
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert names == {JOB: [JOB], OPTIONAL_JOB: [OPTIONAL_JOB]}
    assert {JOB, OPTIONAL_JOB} <= set(services)
    assert "profiles" not in services[JOB] and services[OPTIONAL_JOB]["profiles"]


def alert(name: str, job: str, severity: str, summary: str, description: str) -> dict:
    labels = {"severity": severity, "job": job, "instance": "d:8000"}
    annotations = {"summary": summary, "description": description}
    return {
        "alertname": name,
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
    }


def test_the_optional_model_is_watched_when_started_and_silent_when_not(tmp_path):
    """promtool unit tests: the dSprites job alerts like the first when it runs, and its
    absence (profile not started: no target, no series) fires nothing."""
    mnist_ok = [
        {"series": f'up{{job="{JOB}", instance="a:8000"}}', "values": "1x20"},
        {"series": f'vae_ready{{job="{JOB}", instance="a:8000"}}', "values": "1x20"},
    ]
    dsprites = f'{{job="{OPTIONAL_JOB}", instance="d:8000"}}'
    quiet = [
        {"eval_time": "20m", "alertname": name, "exp_alerts": []}
        for name in ("VaeServeDown", "VaeServeAbsent", "VaeServeNotReady")
    ]
    down = "Prometheus has failed to scrape d:8000 for 2 minutes."
    not_ready = (
        "The process answers scrapes but vae_ready is not 1 (no model, or stuck draining), "
        "so /readyz fails."
    )
    tests = {
        "rule_files": [str(PROMETHEUS / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "profile not started",
                "interval": "1m",
                "input_series": mnist_ok,
                "alert_rule_test": quiet,
            },
            {
                "name": "dsprites down",
                "interval": "1m",
                "input_series": [*mnist_ok, {"series": f"up{dsprites}", "values": "0x20"}],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        **alert(
                            "VaeServeDown",
                            OPTIONAL_JOB,
                            "critical",
                            "vae-serve d:8000 is down",
                            down,
                        ),
                    }
                ],
            },
            {
                "name": "dsprites not ready",
                "interval": "1m",
                "input_series": [
                    *mnist_ok,
                    {"series": f"up{dsprites}", "values": "1x20"},
                    {"series": f"vae_ready{dsprites}", "values": "0x20"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        **alert(
                            "VaeServeNotReady",
                            OPTIONAL_JOB,
                            "warning",
                            "vae-serve d:8000 runs but is not ready",
                            not_ready,
                        ),
                    }
                ],
            },
        ],
    }
    (tmp_path / "optional_job_test.yml").write_text(yaml.safe_dump(tests))
    result = run_tool("promtool", "test", "rules", tmp_path / "optional_job_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus(image_service, tmp_path_factory):
    """A real Prometheus with the project's config, scraping the local service every second."""
    workdir = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = "1s"
    # the first model's job scrapes the local service; the second's keeps its DNS name, which
    # does not resolve here: its compose profile not started (no alert may fire for it)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{image_service.port}"]}]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", workdir)

    with running_prometheus(workdir) as server:
        yield server


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
