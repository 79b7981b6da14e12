"""The Dockerfile: lint, consistency with pyproject and settings, and its command run for real."""

import json
import re
import subprocess
import tomllib

import pytest

from tests.deploy.helpers import (
    DOCKERFILE,
    ROOT,
    dockerfile_instructions,
    final_stage,
    free_port,
    healthcheck_command,
    http_get,
    image_env,
    image_exec_form,
    run_tool,
    settings_env_names,
    start_image_command,
    wait_ready,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_hadolint_finds_nothing():
    result = run_tool("hadolint", "--failure-threshold", "info", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_torch_version_is_the_pyproject_pin():
    pins = [d for d in PYPROJECT["project"]["dependencies"] if re.match(r"torch\b", d)]
    (arg,) = [
        a for k, a in dockerfile_instructions() if k == "ARG" and a.startswith("TORCH_VERSION")
    ]
    assert pins == [f"torch=={arg.partition('=')[2]}"]


def test_every_copied_path_exists():
    for keyword, args in dockerfile_instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_every_package_of_pyproject_is_copied():
    copied = {a.split()[-1].removeprefix("./") for k, a in dockerfile_instructions() if k == "COPY"}
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.split(".")[0].removesuffix("*") for p in packages} <= copied  # app.* -> app


def test_runtime_stage_runs_the_console_script_as_non_root_on_all_interfaces():
    env = image_env()
    users = [a for k, a in final_stage() if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert image_exec_form("ENTRYPOINT")[0] in PYPROJECT["project"]["scripts"]
    assert env["VAE_HOST"] == "0.0.0.0"
    assert [a for k, a in final_stage() if k == "EXPOSE"] == [env["VAE_PORT"]]
    assert {k for k in env if k.startswith("VAE_")} <= settings_env_names()


@pytest.mark.slow
def test_image_command_serves_passes_its_healthcheck_and_drains(tiny_model_file, tmp_path):
    port = free_port()
    process, env = start_image_command(tiny_model_file, port, tmp_path / "service.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", process.popen, 90, process.output)
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        healthcheck = subprocess.run(
            healthcheck_command(), env=env, capture_output=True, timeout=30
        )
        assert healthcheck.returncode == 0, healthcheck.stderr

        graceful = float(env.get("VAE_GRACEFUL_TIMEOUT_S", 20))
        assert process.terminate(timeout=graceful + 15) == 0, process.output()
        healthcheck = subprocess.run(
            healthcheck_command(), env=env, capture_output=True, timeout=30
        )
        assert healthcheck.returncode != 0, "the healthcheck passes with the service stopped"
    finally:
        process.stop()
