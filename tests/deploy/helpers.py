"""Shared by the deployment tests: repo paths, required tools, the image's command, processes."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import free_port, wait_ready  # noqa: F401 (re-exported for the deployment tests)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"


def require_tool(name: str) -> str:
    """Path of a CLI tool; a missing tool skips locally but fails under CI (CI=true)."""
    return helpers.require_tool(name, "run .ci/deploy-tools.sh")


def run_tool(*argv: str | Path) -> subprocess.CompletedProcess:
    cmd = [require_tool(str(argv[0])), *map(str, argv[1:])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage, which is the image that runs."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from + 1 :]


def image_env() -> dict[str, str]:
    """ENV of the running image (KEY=VALUE form)."""
    env = {}
    for keyword, args in final_stage():
        if keyword == "ENV":
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=VALUE form"
                env[key] = value
    return env


def image_exec_form(keyword: str) -> list[str]:
    """ENTRYPOINT or CMD of the running image in exec (JSON) form; [] when absent."""
    args = [a for k, a in final_stage() if k == keyword]
    return json.loads(args[-1]) if args else []


def healthcheck_command() -> list[str]:
    (args,) = [a for k, a in final_stage() if k == "HEALTHCHECK"]
    _, sep, command = args.partition(" CMD ")
    assert sep, f"HEALTHCHECK {args!r}: expected options then CMD [...]"
    return json.loads(command)


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll check() until it returns a truthy value; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A background process with its output in a log file, stopped by stop()."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def terminate(self, timeout: float) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_image_command(model_path: Path, port: int, log: Path) -> tuple[Process, dict[str, str]]:
    """Run the image's ENTRYPOINT + CMD with its ENV (PATH aside) on this machine, serving
    model_path on 127.0.0.1:port. Returns the process and the environment it runs with."""
    argv = image_exec_form("ENTRYPOINT") + image_exec_form("CMD")
    executable = shutil.which(argv[0])
    assert executable, f"{argv[0]} is not installed: pip install -e ."
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    env = os.environ | env | {"VAE_MODEL_PATH": str(model_path), "VAE_PORT": str(port)}
    return Process([executable, *argv[1:]], env, log), env


def settings_env_names() -> set[str]:
    """VAE_* variable of every field of app.settings.Settings."""
    from app.settings import Settings

    return {f"VAE_{name.upper()}" for name in Settings.model_fields}


class PrometheusServer:
    """Prometheus's HTTP API on a local port."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}")
        reply = json.loads(body)
        assert status == 200 and reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]


@contextmanager
def running_prometheus(workdir: Path) -> Iterator[PrometheusServer]:
    """The Prometheus server on workdir/prometheus.yml, on a free port, until it is ready
    (failing at once, with its output, if it exits); stopped on leaving."""
    port = free_port()
    argv = [
        require_tool("prometheus"),
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
