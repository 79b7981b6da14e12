"""Graceful shutdown of a real `vae-serve` process (model calls slowed to 1 s each).

SIGTERM while requests are in flight: they complete with 200, new connections are refused
(or get 503), and the process exits 0 within the grace period. The drain time is printed.
"""

import concurrent.futures
import signal
import time

import httpx
import pytest

from tests.helpers import free_port, wait_ready
from tests.reliability.conftest import start_server

MODEL_DELAY_S = 1.0
IN_FLIGHT = 3
GRACE_S = 15.0

pytestmark = pytest.mark.slow


def queue_depth(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("vae_queue_depth "):
            return float(line.split()[1])
    raise AssertionError("no vae_queue_depth in /metrics")


def test_sigterm_drains_in_flight_requests_and_exits_0(tiny_model_file):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "VAE_MODEL_PATH": str(tiny_model_file),
        "VAE_PORT": str(port),
        "VAE_BATCHING": "false",  # one slow call per request: the drain takes IN_FLIGHT s
        "VAE_WARMUP": "false",
        "VAE_GRACEFUL_TIMEOUT_S": str(GRACE_S),
        "VAE_TEST_MODEL_DELAY_S": str(MODEL_DELAY_S),
    }
    server = start_server(env, module="tests.reliability.slow_server")
    try:
        wait_ready(url, server)
        with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [
                pool.submit(httpx.get, f"{url}/sample?n=2&seed={i}", timeout=30)
                for i in range(IN_FLIGHT)
            ]
            deadline = time.monotonic() + 10
            while queue_depth(url) < IN_FLIGHT and time.monotonic() < deadline:
                time.sleep(0.05)
            assert queue_depth(url) == IN_FLIGHT
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            try:  # a new connection during the drain: refused, or 503 if it got in
                late = httpx.get(f"{url}/readyz", timeout=5)
                assert late.status_code == 503 and late.json()["status"] == "draining"
                late_outcome = "503 draining"
            except httpx.ConnectError:
                late_outcome = "connection refused"
            responses = [f.result() for f in futures]
        returncode = server.wait(timeout=GRACE_S + 5)
        drain_s = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
    assert [r.status_code for r in responses] == [200] * IN_FLIGHT
    assert all(r.content.startswith(b"\x89PNG") for r in responses)
    assert returncode == 0, server.communicate()[1][-2000:]
    assert drain_s < GRACE_S
    print(
        f"\ndrain: {IN_FLIGHT} in flight, exit 0 after {drain_s:.2f} s; new request: {late_outcome}"
    )
