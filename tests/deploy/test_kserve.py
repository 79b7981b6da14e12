"""KServe InferenceServices (deploy/kserve): offline checks, as far as they go without a cluster.

The pod spec embedded in each predictor is validated, as a Pod, against the Kubernetes
schemas the plain manifests use (tests/deploy/test_k8s.py); the InferenceService's own
fields against KServe's documented v1beta1 structure (the ComponentExtensionSpec of the
API reference); and the pod against deploy/k8s: same image, resources, security, drain.
The second model's InferenceService is the raw one but for its name and VAE_MODEL_PATH.
"""

import copy
import fnmatch
import tomllib

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, ROOT, run_tool, settings_env_names
from tests.deploy.test_k8s import container as k8s_container
from tests.deploy.test_k8s import env_of, manifests

KSERVE = DEPLOY / "kserve"
RAW, KNATIVE = KSERVE / "inferenceservice.yaml", KSERVE / "inferenceservice-knative.yaml"
DSPRITES = KSERVE / "inferenceservice-dsprites.yaml"  # the second shipped model, raw mode
ALL, IDS = [RAW, KNATIVE, DSPRITES], ["raw", "knative", "dsprites"]
DSPRITES_MODEL = "model/vae_dsprites.pt"
K8S_VERSIONS = ("1.30.0", "1.37.0")  # as test_k8s.py
# serving.kserve.io/v1beta1 ComponentExtensionSpec: the fields a predictor may carry beside
# the inline PodSpec (KServe API reference; the kserve 0.21 SDK's attribute_map), with types.
EXTENSION_FIELDS = {
    "annotations": dict,
    "autoScaling": dict,
    "batcher": dict,
    "canaryTrafficPercent": int,
    "containerConcurrency": int,
    "deploymentStrategy": dict,
    "labels": dict,
    "logger": dict,
    "maxReplicas": int,
    "minReplicas": int,
    "scaleMetric": str,
    "scaleMetricType": str,
    "scaleTarget": int,
    "timeout": int,
}
SCALE_METRICS = {"cpu", "memory", "concurrency", "rps"}
DEPLOYMENT_MODES = {"RawDeployment", "Standard", "Serverless"}


def load(path) -> dict:
    (doc,) = yaml.safe_load_all(path.read_text())
    return doc


def pod_spec(isvc: dict) -> dict:
    """The predictor without KServe's own fields: what must be a valid Kubernetes PodSpec."""
    return {k: v for k, v in isvc["spec"]["predictor"].items() if k not in EXTENSION_FIELDS}


def test_every_inference_service_here_is_checked():
    assert sorted(KSERVE.glob("*.yaml")) == sorted(ALL)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_embedded_pod_spec_validates_against_kubernetes_schemas(path, tmp_path):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vae-serve"}}
    pod["spec"] = pod_spec(load(path))
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    for version in K8S_VERSIONS:
        result = run_tool("kubernetes-validate", "--strict", "-k", version, tmp_path / "pod.yaml")
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_inference_service_fields_follow_the_v1beta1_structure(path):
    isvc = load(path)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    assert set(isvc) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(isvc["spec"]) == {"predictor"}
    mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode in DEPLOYMENT_MODES
    predictor = isvc["spec"]["predictor"]
    for name, kind in EXTENSION_FIELDS.items():
        if name in predictor:
            assert isinstance(predictor[name], kind), name
    assert predictor["scaleMetric"] in SCALE_METRICS
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    (c,) = predictor["containers"]
    assert c["name"] == "kserve-container"  # the name KServe gives its predictor container
    assert all(isinstance(v, str) for v in predictor["annotations"].values())


def test_raw_mode_scales_like_the_plain_hpa():
    predictor = load(RAW)["spec"]["predictor"]
    hpa = manifests("cpu")["HorizontalPodAutoscaler"]["spec"]
    assert load(RAW)["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert predictor["minReplicas"] == hpa["minReplicas"]
    assert predictor["maxReplicas"] == hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert predictor["scaleMetric"] == metric["resource"]["name"]
    assert predictor["scaleTarget"] == metric["resource"]["target"]["averageUtilization"]


def test_knative_variant_caps_concurrency():
    predictor = load(KNATIVE)["spec"]["predictor"]
    assert predictor["scaleMetric"] == "concurrency"
    assert 0 < predictor["scaleTarget"] <= predictor["containerConcurrency"]


@pytest.mark.parametrize("path", [RAW, KNATIVE], ids=["raw", "knative"])
def test_pod_matches_the_plain_deployment(path):
    spec = pod_spec(load(path))
    plain = manifests("cpu")["Deployment"]["spec"]["template"]
    (c,) = spec["containers"]
    expected = k8s_container("cpu")
    for key in ("image", "env", "resources", "securityContext"):
        assert c[key] == expected[key], key
    assert spec["securityContext"] == plain["spec"]["securityContext"]
    assert spec["volumes"] == plain["spec"]["volumes"]
    assert c["volumeMounts"] == expected["volumeMounts"]
    assert load(path)["spec"]["predictor"]["annotations"] == plain["metadata"]["annotations"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["readinessProbe"]["httpGet"]["port"] == c["ports"][0]["containerPort"]
    assert str(c["ports"][0]["containerPort"]) == env_of(c)["VAE_PORT"]
    assert set(env_of(c)) <= settings_env_names()


def test_raw_mode_has_the_plain_deployments_drain():
    spec = pod_spec(load(RAW))
    plain = manifests("cpu")["Deployment"]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["lifecycle"] == k8s_container("cpu")["lifecycle"]
    assert spec["terminationGracePeriodSeconds"] == plain["terminationGracePeriodSeconds"]


def test_the_second_model_is_the_raw_service_but_for_its_name_and_model_path():
    dsprites, raw = load(DSPRITES), load(RAW)
    assert dsprites["metadata"]["name"] == "vae-serve-dsprites" != raw["metadata"]["name"]
    (c,) = dsprites["spec"]["predictor"]["containers"]
    assert env_of(c)["VAE_MODEL_PATH"] == DSPRITES_MODEL
    expected = copy.deepcopy(raw)
    expected["metadata"]["name"] = dsprites["metadata"]["name"]
    for labels in (expected["metadata"]["labels"], expected["spec"]["predictor"]["labels"]):
        labels["app.kubernetes.io/instance"] = dsprites["metadata"]["name"]
    (expected_c,) = expected["spec"]["predictor"]["containers"]
    expected_c["env"].insert(0, {"name": "VAE_MODEL_PATH", "value": DSPRITES_MODEL})
    assert dsprites == expected


def test_the_second_models_path_is_one_the_image_installs():
    """A path relative to the installed package (app/settings.py) that the package data
    ships; whether the file is there yet is test_container.py's to say."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package, _, name = DSPRITES_MODEL.partition("/")
    assert any(fnmatch.fnmatch(name, p) for p in package_data["package-data"][package])


def test_the_field_check_rejects_a_misspelt_extension_field(tmp_path):
    bad = load(RAW)
    bad["spec"]["predictor"]["maxReplica"] = 3  # not a ComponentExtensionSpec field
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod_spec(bad)}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    result = run_tool("kubernetes-validate", "--strict", tmp_path / "pod.yaml")
    assert result.returncode != 0 and "maxReplica" in result.stdout + result.stderr
