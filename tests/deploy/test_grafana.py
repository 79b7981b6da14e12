"""Grafana provisioning and dashboard: every query names series and labels the service exposes."""

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.helpers import DEPLOY

GRAFANA = DEPLOY / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "vae-serve.json").read_text())
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
PROMETHEUS_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series


def exposed(exposition: str) -> tuple[set[str], set[str]]:
    """Series names (with their suffixes) and label names of the service's vae_* metrics."""
    names, labels = set(), set()
    for family in text_string_to_metric_families(exposition):
        if family.name.startswith("vae_") and not family.name.endswith("_created"):
            names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
            labels |= {label for sample in family.samples for label in sample.labels}
    return names, labels


def queries() -> list[tuple[str, str]]:
    return [(t["expr"], t["legendFormat"]) for p in DASHBOARD["panels"] for t in p["targets"]]


def test_datasource_uid_matches_every_panel():
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    panels = DASHBOARD["panels"]
    assert {p["datasource"]["uid"] for p in panels} == {datasource["uid"]}
    assert {t["datasource"]["uid"] for p in panels for t in p["targets"]} == {datasource["uid"]}


def test_dashboard_shows_the_required_views():
    titles = " ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for view in ("request rate", "p50", "p95", "p99", "batch size", "queue depth", "reason"):
        assert view in titles, view
    assert "inference" in titles


@pytest.mark.slow
def test_every_query_uses_exposed_series_and_labels(exposition):
    names, labels = exposed(exposition)
    assert {"vae_http_requests_total", "vae_http_request_duration_seconds_bucket"} <= names
    used = set()
    for expr, legend in queries():
        series = set(re.findall(r"\bvae_\w+", expr))
        assert series or "up{" in expr, expr
        assert series <= names, f"{expr}: {series - names} not exposed"
        used |= series
        grouped = {g.strip() for by in re.findall(r"by \(([^)]*)\)", expr) for g in by.split(",")}
        matched = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        in_legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        unknown = (grouped | matched | in_legend) - labels - PROMETHEUS_LABELS
        assert not unknown, f"{expr} / {legend!r}: labels {unknown} not exposed"
    bases = {re.sub(r"_(bucket|sum|count)$", "", s) for s in used}
    assert {re.sub(r"_(bucket|sum|count)$", "", n) for n in names} <= bases, "series not graphed"
