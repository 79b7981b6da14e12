"""Podman for the container tests: root required, the image built by
scripts/container/build.sh, containers started as docker-compose.yml starts them.

Rootful podman only (what CI has; rootless podman cannot publish this host's ports or set
its limits): without root these tests skip, under CI (CI=true) they fail.
"""

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.deploy.helpers import ROOT, free_port, http_get, require_tool, wait_until

SCRIPTS = ROOT / "scripts" / "container"
COMPOSE = ROOT / "docker-compose.yml"
CACHE = Path(os.environ.get("VAE_CI_CACHE", "/var/cache/vae-serve-ci"))
IMAGE = "localhost/vae-serve:ci"
BUILD_TIMEOUT_S = 1200  # a cold build (base image + torch layer) on a busy 2-core machine


def require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "container tests need root (rootful podman): run them as root"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def podman_env() -> dict[str, str]:
    """The environment of every podman call: the containers.conf that env.sh writes."""
    return os.environ | {"CONTAINERS_CONF": str(CACHE / "containers.conf")}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    argv = [require_tool("podman"), *args]
    result = subprocess.run(argv, env=podman_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
    return result


def run_script(name: str, *args: str, timeout: float = BUILD_TIMEOUT_S) -> str:
    """Run a scripts/container script; its stdout, or a failure with the end of its output."""
    require_root()
    for tool in ("podman", "debootstrap"):
        require_tool(tool)
    result = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


def compose_service(name: str = "vae-serve") -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"][name]


def interpolate(value: object) -> str:
    """Compose's ${VAR:-default}: the shell's value, else the default."""

    def one(match: re.Match) -> str:
        return os.environ.get(match[1]) or match[2]

    return re.sub(r"\$\{(\w+):-([^}]*)\}", one, str(value))


def seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def compose_run_args(service: dict) -> list[str]:
    """`podman run` flags for what the compose service sets: its hardening, its limits and its
    environment (what `docker compose up` applies; ports and names are the caller's)."""
    limits = service["deploy"]["resources"]["limits"]
    args = ["--read-only"] if service.get("read_only") else []
    args += [f"--tmpfs={path}" for path in service.get("tmpfs", [])]
    args += [f"--security-opt={option}" for option in service.get("security_opt", [])]
    args += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
    args += [f"--cpus={limits['cpus']}", f"--memory={limits['memory']}"]
    args += [f"--stop-timeout={int(seconds(service['stop_grace_period']))}"]
    env = {key: interpolate(value) for key, value in service.get("environment", {}).items()}
    args += [f"--env={key}={value}" for key, value in env.items() if value]
    return args


@dataclass
class Container:
    name: str
    port: int
    started: float  # time.monotonic() when `podman run` was called

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def wait_ready(self, timeout: float = 90) -> float:
        """Seconds from `podman run` to the first /readyz 200."""

        def ready():
            assert self.running(), f"container {self.name} exited:\n{self.logs()[-3000:]}"
            return http_get(self.url + "/readyz", timeout=2)[0] == 200

        wait_until(ready, timeout, f"/readyz of container {self.name}", interval=0.1)
        return time.monotonic() - self.started

    def exit_code(self, timeout: float) -> int:
        return int(podman("wait", self.name, timeout=timeout).stdout.strip())

    def remove(self) -> None:
        podman("rm", "--force", "--time=0", self.name, check=False)


def start_container(name: str, image: str = IMAGE, *extra: str) -> Container:
    """The image started with the compose service's flags, published on a free local port."""
    port = free_port()
    name = f"vae-test-{os.getpid()}-{name}"
    podman("rm", "--force", "--time=0", name, check=False)
    started = time.monotonic()
    args = compose_run_args(compose_service())
    publish = f"--publish=127.0.0.1:{port}:8000"
    podman("run", "--detach", f"--name={name}", publish, *args, *extra, image)
    return Container(name, port, started)
