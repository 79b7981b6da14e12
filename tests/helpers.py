"""Helpers shared by the test packages: ports, waiting for a server (scripts/readiness.py),
external tools, time bounds, errors.

External tools (wrk, promtool, hadolint, Chromium...) go through `require_tool` /
`unavailable`: a missing tool skips the test on a developer's machine and fails it in CI
(`CI=true`, set by .ci/run), so CI can never pass by skipping. tests/conftest.py prints
every skip, with its reason, at the end of the run.
"""

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

# one copy of each, for the scripts and the tests
from scripts.readiness import free_port, wait_ready  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


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


def time_bound(baseline_s: float, factor: float = 50, slack_s: float = 1.0) -> float:
    """A time limit derived from a baseline measured in the same test, on this machine, now:
    `factor` times it, plus `slack_s` for a scheduler's hiccup on a loaded 2-core runner. A
    slow machine slows the baseline too, so the limit holds its meaning there."""
    return factor * baseline_s + slack_s


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """call()'s result and the seconds it took."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


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
