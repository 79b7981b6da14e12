"""Autoscaling on the model queue (deploy/k8s/autoscaling): the KEDA ScaledObject and the
prometheus-adapter rule hold the fields their documentation defines (KEDA 2.16's
ScaledObject spec and prometheus scaler; prometheus-adapter v0.12's docs/config.md), their
PromQL passes promtool, and a real Prometheus scraping two local replicas with the shipped
relabelling answers the queries with one value per pod."""

import asyncio
import re
import threading

import pytest
import torch
import yaml

from app.batching import MicroBatcher
from scripts.autoscaling.common import autoscaling_queries, static_pods_config
from tests.deploy.helpers import (
    DEPLOY,
    free_port,
    http_get,
    run_tool,
    running_prometheus,
    start_image_command,
    wait_ready,
    wait_until,
)

AUTOSCALING = DEPLOY / "k8s" / "autoscaling"
SCALED_OBJECT = AUTOSCALING / "keda" / "scaledobject.yaml"
ADAPTER_CONFIG = AUTOSCALING / "prometheus-adapter" / "adapter-config.yaml"
ADAPTER_HPA = AUTOSCALING / "prometheus-adapter" / "hpa.yaml"
TARGET = "8"  # queue depth per pod: docs/deploy.md, "Autoscaling", says why

# The fields KEDA 2.16 documents (keda.sh/docs/2.16/reference/scaledobject-spec,
# keda.sh/docs/2.16/scalers/prometheus); a field outside these is a typo KEDA ignores or rejects.
KEDA_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
    "triggers",
}  # fmt: skip
KEDA_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
KEDA_ADVANCED = {
    "restoreToOriginalReplicaCount",
    "horizontalPodAutoscalerConfig",
    "scalingModifiers",
}
KEDA_TRIGGER = {"type", "name", "metadata", "metricType", "authenticationRef", "useCachedMetrics"}
KEDA_PROMETHEUS = {
    "serverAddress", "query", "threshold", "activationThreshold", "queryParameters",
    "namespace", "customHeaders", "ignoreNullValues", "unsafeSsl", "timeout", "authModes",
}  # fmt: skip
# prometheus-adapter v0.12 (docs/config.md): a rule's parts and the query template's fields
ADAPTER_TOP = {"rules", "resourceRules", "externalRules"}
ADAPTER_RULE = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
ADAPTER_TEMPLATE_FIELDS = {"Series", "LabelMatchers", "GroupBy"}


def load(path) -> dict:
    return yaml.safe_load(path.read_text())


def keda_problems(doc: dict) -> list[str]:
    """What in a ScaledObject falls outside the KEDA 2.16 spec for a prometheus trigger."""
    problems = []
    if (doc.get("apiVersion"), doc.get("kind")) != ("keda.sh/v1alpha1", "ScaledObject"):
        problems.append(f"apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
    spec = doc["spec"]
    checks = [
        ("spec", spec, KEDA_SPEC),
        ("scaleTargetRef", spec["scaleTargetRef"], KEDA_TARGET_REF),
        ("advanced", spec.get("advanced", {}), KEDA_ADVANCED),
    ]
    for trigger in spec["triggers"]:
        checks += [
            ("trigger", trigger, KEDA_TRIGGER),
            ("metadata", trigger["metadata"], KEDA_PROMETHEUS),
        ]
        if trigger["type"] != "prometheus":
            problems.append(f"trigger type {trigger['type']}")
        missing = {"serverAddress", "query", "threshold"} - set(trigger["metadata"])
        problems += [f"metadata lacks {m}" for m in sorted(missing)]
        if trigger.get("metricType", "AverageValue") not in ("AverageValue", "Value"):
            problems.append(f"metricType {trigger['metricType']}")
        for key in ("threshold", "activationThreshold"):  # strings holding numbers
            value = trigger["metadata"].get(key, "0")
            if not isinstance(value, str) or not re.fullmatch(r"\d+(\.\d+)?", value):
                problems.append(f"{key} {value!r} is not a quoted number")
    for where, fields, allowed in checks:
        problems += [f"{where}.{k} is not a KEDA 2.16 field" for k in sorted(set(fields) - allowed)]
    if "name" not in spec["scaleTargetRef"]:
        problems.append("scaleTargetRef.name is mandatory")
    return problems


def adapter_rules() -> list[dict]:
    config = yaml.safe_load(load(ADAPTER_CONFIG)["data"]["config.yaml"])
    assert set(config) <= ADAPTER_TOP, set(config) - ADAPTER_TOP
    return config["rules"]


def adapter_problems(rule: dict) -> list[str]:
    """What in one discovery rule falls outside prometheus-adapter v0.12's config format."""
    problems = [f"rule.{k} is not an adapter field" for k in sorted(set(rule) - ADAPTER_RULE)]
    problems += [f"rule lacks {k}" for k in ("seriesQuery", "metricsQuery") if k not in rule]
    resources = rule.get("resources", {})
    problems += [
        f"resources.{k}" for k in sorted(set(resources) - {"overrides", "template", "namespaced"})
    ]
    for label, target in resources.get("overrides", {}).items():
        if not set(target) <= {"group", "resource"} or "resource" not in target:
            problems.append(f"resources.overrides.{label}: {target}")
    problems += [f"name.{k}" for k in sorted(set(rule.get("name", {})) - {"matches", "as"})]
    fields = set(re.findall(r"<<\s*\.(\w+)\s*>>", rule.get("metricsQuery", "")))
    problems += [f"metricsQuery field .{f}" for f in sorted(fields - ADAPTER_TEMPLATE_FIELDS)]
    return problems


def test_keda_scaled_object_holds_only_keda_2_16_fields_and_targets_the_deployment():
    doc = load(SCALED_OBJECT)
    assert keda_problems(doc) == []
    deployment = load(DEPLOY / "k8s" / "cpu" / "deployment.yaml")
    ref = doc["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", "vae-serve")
    assert ref["name"] == deployment["metadata"]["name"]
    assert 1 <= doc["spec"]["minReplicaCount"] <= doc["spec"]["maxReplicaCount"]
    (trigger,) = doc["spec"]["triggers"]
    assert trigger["metadata"]["threshold"] == TARGET
    assert trigger["metricType"] == "AverageValue"  # the sum over pods, divided by the pods


def test_the_keda_check_rejects_a_misspelt_field():
    doc = load(SCALED_OBJECT)
    doc["spec"]["triggers"][0]["metadata"]["serverAdress"] = doc["spec"]["triggers"][0][
        "metadata"
    ].pop("serverAddress")
    doc["spec"]["pollingIntervall"] = 15
    assert keda_problems(doc) == [
        "metadata lacks serverAddress",
        "spec.pollingIntervall is not a KEDA 2.16 field",
        "metadata.serverAdress is not a KEDA 2.16 field",
    ]


def test_kubernetes_schemas_accept_the_hpa_configmap_and_keda_behavior(tmp_path):
    """The HPA and the ConfigMap against Kubernetes' own schemas; the ScaledObject's
    `behavior` is an HPA behavior, so it is checked inside an HPA."""
    hpa = load(ADAPTER_HPA)
    hpa["spec"]["behavior"] = load(SCALED_OBJECT)["spec"]["advanced"][
        "horizontalPodAutoscalerConfig"
    ]["behavior"]
    (tmp_path / "keda-behavior.yaml").write_text(yaml.safe_dump(hpa))
    for version in ("1.30.0", "1.37.0"):
        paths = (ADAPTER_HPA, ADAPTER_CONFIG, tmp_path / "keda-behavior.yaml")
        result = run_tool("kubernetes-validate", "--strict", "-k", version, *paths)
        assert result.returncode == 0, result.stdout + result.stderr


def test_adapter_rule_holds_only_v0_12_fields_and_names_the_hpas_metric():
    (rule,) = adapter_rules()
    assert adapter_problems(rule) == []
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    series = rule["seriesQuery"].split("{")[0]
    exposed = re.sub(rule["name"]["matches"], rule["name"]["as"], series)
    for hpa_path in (ADAPTER_HPA, DEPLOY / "k8s" / "gpu" / "hpa.yaml"):
        (metric,) = load(hpa_path)["spec"]["metrics"]
        assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == exposed
    (metric,) = load(ADAPTER_HPA)["spec"]["metrics"]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": TARGET}
    broken = {**rule, "metricQuery": rule["metricsQuery"]}
    assert adapter_problems(broken) == ["rule.metricQuery is not an adapter field"]


def test_promtool_accepts_the_queries_and_the_scrape_job(tmp_path):
    keda, adapter = autoscaling_queries()
    (rule,) = adapter_rules()
    exprs = {"keda": keda, "adapter": adapter, "adapter_series": rule["seriesQuery"]}
    rules = {
        "groups": [
            {
                "name": "autoscaling",
                "rules": [{"record": f"vae:{k}", "expr": v} for k, v in exprs.items()],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    result = run_tool("promtool", "check", "rules", tmp_path / "queries.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    config = static_pods_config({"vae-serve-a": "http://127.0.0.1:8000"})
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run_tool("promtool", "check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_batcher_reports_time_in_queue_and_rows_as_a_batch_starts():
    seen: list[tuple[list[float], int]] = []

    async def model(x: torch.Tensor):
        await asyncio.sleep(0.05)
        return (x,)

    async def scenario():
        batcher = MicroBatcher(model, 8, on_batch=lambda waits, rows: seen.append((waits, rows)))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(torch.zeros(1, 2)))
        await asyncio.sleep(0.01)  # the first batch runs; these three queue behind it
        await asyncio.gather(first, *(batcher.submit(torch.zeros(2, 2)) for _ in range(3)))
        await batcher.stop()

    asyncio.run(scenario())
    assert [rows for _, rows in seen] == [1, 6]
    assert len(seen[1][0]) == 3 and all(0.03 < w < 1 for w in seen[1][0])


def test_the_service_exports_time_in_queue_and_batch_fill(exposition):
    for family in ("vae_queue_duration_seconds_bucket", "vae_batch_fill_ratio_bucket"):
        assert re.search(rf'^{family}{{le="1.0",operation="decode"}} [1-9]', exposition, re.M), (
            family
        )


@pytest.fixture(scope="module")
def pods(image_service, tiny_model_file, tmp_path_factory):
    """Two replicas: the session's service and one more, as pods a and b."""
    port = free_port()
    log = tmp_path_factory.mktemp("pod-b") / "service.log"
    process, _ = start_image_command(tiny_model_file, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process.popen, 90, process.output)
        yield {"vae-serve-a": image_service.url, "vae-serve-b": f"http://127.0.0.1:{port}"}
    finally:
        process.stop()


@pytest.fixture(scope="module")
def prometheus(pods, tmp_path_factory):
    """A real Prometheus scraping both pods every second with prometheus-pods.yml's relabelling."""
    workdir = tmp_path_factory.mktemp("prometheus-autoscaling")
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(static_pods_config(pods)))
    with running_prometheus(workdir) as server:
        yield server


@pytest.mark.slow
def test_prometheus_answers_the_autoscalers_queries_per_pod(pods, prometheus):
    """Load on pod b only: the adapter's query gives each pod its own queue depth (b's above
    0), and the KEDA query one value, their sum."""
    keda, adapter = autoscaling_queries()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            http_get(pods["vae-serve-b"] + "/sample?n=64&seed=1", timeout=10)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    try:

        def per_pod():
            values = {s["metric"]["pod"]: float(s["value"][1]) for s in prometheus.query(adapter)}
            return values if set(values) == set(pods) and values["vae-serve-b"] > 0 else None

        values = wait_until(per_pod, 45, "a queue on pod b in the adapter's query", interval=0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    (total,) = prometheus.query(keda)
    assert float(total["value"][1]) > 0 and values["vae-serve-b"] > values["vae-serve-a"]
    (series,) = prometheus.query('vae_queue_depth{pod="vae-serve-b"}')
    assert series["metric"]["namespace"] == "default" and series["metric"]["app"] == "vae-serve"
    print(f"\nadapter query per pod: {values}; KEDA query: {total['value'][1]}")
