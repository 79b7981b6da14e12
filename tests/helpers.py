"""Helpers shared by the test packages: ports, waiting for a server, external tools, errors.

External tools (wrk, promtool, hadolint, Chromium...) go through `require_tool` /
`unavailable`: a missing tool skips the test on a developer's machine and fails it in CI
(`CI=true`, set by .ci/run), so CI can never pass by skipping. tests/conftest.py prints
every skip, with its reason, at the end of the run.
"""

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip (a developer's machine) or fail (CI) a test whose external tool is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: CI must run this test)")
    pytest.skip(reason)


def require_tool(name: str, install: str) -> str:
    """The path of command `name`; `install` says how to get it (e.g. 'run .ci/deploy-tools.sh')."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed: {install}")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 2) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def wait_ready(
    url: str,
    process: subprocess.Popen,
    timeout: float = 60,
    output: Callable[[], str] | None = None,
) -> None:
    """Until GET url/readyz answers 200; fails at once if the process exits, with `output()`
    (default: its stderr, when piped)."""

    def ready() -> bool:
        if process.poll() is not None:
            shown = output() if output else process.communicate()[1] if process.stderr else ""
            raise AssertionError(f"the server exited with {process.returncode}:\n{shown}")
        return http_status(f"{url}/readyz") == 200

    wait_until(ready, timeout, f"{url}/readyz did not answer 200")


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is the service's error shape with this status (and code): its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    assert "Traceback" not in response.text and ".py" not in response.text, body
    assert str(ROOT) not in response.text, body
    return body
