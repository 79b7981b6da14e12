"""docker-compose.yml and its GPU override against the Compose specification, and their settings."""

import re

import pytest
import yaml

from tests.deploy.helpers import ROOT, run_tool, settings_env_names

COMPOSE = ROOT / "docker-compose.yml"
GPU_OVERRIDE = ROOT / "docker-compose.gpu.yml"


def merged(base: dict, override: dict) -> dict:
    """Compose's merge for the mappings these files use: the override wins key by key."""
    out = dict(base)
    for key, value in override.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merged(base[key], value) if both_maps else value
    return out


def check_compose_spec(path) -> str:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_compose_files_follow_the_compose_spec(tmp_path):
    check_compose_spec(COMPOSE)
    check_compose_spec(GPU_OVERRIDE)
    both = merged(yaml.safe_load(COMPOSE.read_text()), yaml.safe_load(GPU_OVERRIDE.read_text()))
    (tmp_path / "merged.yml").write_text(yaml.safe_dump(both))
    check_compose_spec(tmp_path / "merged.yml")


def test_the_schema_check_rejects_a_misspelt_key(tmp_path):
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["vae-serve"]["helthcheck"] = broken["services"]["vae-serve"]["healthcheck"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    with pytest.raises(AssertionError, match="helthcheck"):
        check_compose_spec(tmp_path / "broken.yml")


def test_gpu_override_reserves_an_nvidia_gpu_and_selects_cuda():
    service = yaml.safe_load(GPU_OVERRIDE.read_text())["services"]["vae-serve"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert service["environment"]["VAE_DEVICE"] == "cuda"


@pytest.mark.parametrize("path", [COMPOSE, GPU_OVERRIDE], ids=lambda p: p.name)
def test_environment_names_are_settings(path):
    names = set(re.findall(r"\b(VAE_[A-Z_]+)\s*:", path.read_text()))
    assert names and names <= settings_env_names()


def test_service_drains_before_compose_kills_it():
    service = yaml.safe_load(COMPOSE.read_text())["services"]["vae-serve"]
    from app.settings import Settings

    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > Settings().graceful_timeout_s
    assert service["restart"] in ("always", "unless-stopped", "on-failure")
    assert service["deploy"]["resources"]["limits"]["memory"]


def test_the_second_model_is_the_first_service_under_a_profile_with_its_own_port_and_model():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    first, second = services["vae-serve"], services["vae-serve-dsprites"]
    assert "profiles" not in first and second["profiles"] == ["dsprites"]
    assert second["ports"] == ["${DSPRITES_PORT:-8001}:8000"]
    assert second["environment"] == first["environment"] | {
        "VAE_MODEL_PATH": "model/vae_dsprites.pt"
    }
    different = {"profiles", "ports", "environment"}
    assert {k: v for k, v in second.items() if k not in different} == {
        k: v for k, v in first.items() if k not in different
    }
    # nothing depends on it: a plain `up` (profile off) must not need it
    assert all("vae-serve-dsprites" not in s.get("depends_on", {}) for s in services.values())
