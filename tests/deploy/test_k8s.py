"""Kubernetes manifests: schema-valid (CPU and GPU variants) and wired together correctly."""

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, image_env, run_tool, settings_env_names

K8S = DEPLOY / "k8s"
VARIANTS = ["cpu", "gpu"]


def manifests(variant: str) -> dict[str, dict]:
    """kind -> resource of the common manifests plus those of one variant."""
    docs = {}
    for path in sorted([*(K8S / "common").glob("*.yaml"), *(K8S / variant).glob("*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in docs, f"two {doc['kind']} in common + {variant}"
            docs[doc["kind"]] = doc
    return docs


def container(variant: str) -> dict:
    (c,) = manifests(variant)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in c["env"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_validate_against_kubernetes_schemas(variant):
    paths = sorted([*(K8S / "common").glob("*.yaml"), *(K8S / variant).glob("*.yaml")])
    for version in ("1.30.0", "1.37.0"):
        result = run_tool("kubernetes-validate", "--strict", "-k", version, *paths)
        assert result.returncode == 0, result.stdout + result.stderr
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(
        manifests(variant)
    )


def test_the_schema_check_rejects_a_misspelt_field(tmp_path):
    text = (K8S / "cpu" / "deployment.yaml").read_text()
    (tmp_path / "bad.yaml").write_text(text.replace("readOnlyRootFilesystem", "readOnlyRootFs"))
    result = run_tool("kubernetes-validate", "--strict", tmp_path / "bad.yaml")
    assert result.returncode != 0 and "readOnlyRootFs" in result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_selectors_ports_and_probes_fit_together(variant):
    docs = manifests(variant)
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    assert (
        docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == (deployment["metadata"]["name"])
    )
    c = container(variant)
    (port,) = c["ports"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert str(port["containerPort"]) == env_of(c)["VAE_PORT"] == image_env()["VAE_PORT"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    probes = {name: c[name]["httpGet"] for name in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = c["readinessProbe"]["httpGet"]
    assert {name: p["path"] for name, p in probes.items()} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert all(p["port"] in (port["name"], port["containerPort"]) for p in probes.values())


@pytest.mark.parametrize("variant", VARIANTS)
def test_pod_is_locked_down_and_has_time_to_drain(variant):
    spec = manifests(variant)["Deployment"]["spec"]["template"]["spec"]
    c = container(variant)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(c["resources"])
    sleep_s = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain_s = float(env_of(c)["VAE_GRACEFUL_TIMEOUT_S"])
    assert spec["terminationGracePeriodSeconds"] > sleep_s + drain_s
    assert set(env_of(c)) <= settings_env_names()


def test_gpu_variant_differs_from_cpu_only_where_intended():
    cpu, gpu = manifests("cpu")["Deployment"], manifests("gpu")["Deployment"]
    assert (
        gpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        == 1
    )
    assert env_of(container("gpu"))["VAE_DEVICE"] == "cuda"
    for deployment in (cpu, gpu):
        pod = deployment["spec"]["template"]["spec"]
        pod.pop("tolerations", None)
        c = pod["containers"][0]
        for key in ("image", "env", "resources", "startupProbe"):
            c.pop(key)
        deployment["spec"].pop("replicas")
    assert cpu == gpu


MEBI = {"Mi": 2**20, "Gi": 2**30}


@pytest.mark.parametrize("variant", VARIANTS)
def test_tmp_holds_the_request_bytes_the_memory_budget_admits(variant):
    """Starlette spools multipart files over 1 MiB to /tmp: a smaller emptyDir than the
    budget of request bytes would get the pod evicted under a burst the budget admits."""
    from app.settings import Settings

    spec = manifests(variant)["Deployment"]["spec"]["template"]["spec"]
    (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
    size = tmp["emptyDir"]["sizeLimit"]
    limit = int(size[:-2]) * MEBI[size[-2:]]
    budget = int(env_of(container(variant)).get("VAE_MAX_INFLIGHT_BYTES") or 0)
    assert limit > (budget or Settings().max_inflight_bytes)
