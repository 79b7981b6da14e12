"""Two replicas of the image behind HAProxy (Debian's, on the host) with an active health
check on /readyz, under continuous load on every endpoint but /readyz (scripts/soak.py's mix, 16
clients): a rolling restart fails no request; kill -9 of one replica fails requests only
until the balancer marks it down.

HAProxy's check timings are the Kubernetes readiness probe's, and the drain and start-up
times measured here are checked against the Deployment's grace period and startup probe,
so what passes here is what the manifests promise.
"""

import asyncio
import csv
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from scripts.soak import requests_for
from tests.deploy.containers import SCRIPTS, Container, podman, start_container
from tests.deploy.helpers import DEPLOY, Process, free_port, require_tool, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

CONCURRENCY = 16
DEPLOYMENT = yaml.safe_load((DEPLOY / "k8s" / "cpu" / "deployment.yaml").read_text())
POD = DEPLOYMENT["spec"]["template"]["spec"]
(K8S_CONTAINER,) = POD["containers"]
READINESS = K8S_CONTAINER["readinessProbe"]
STARTUP = K8S_CONTAINER["startupProbe"]
PRESTOP_S = int(K8S_CONTAINER["lifecycle"]["preStop"]["exec"]["command"][-1])
GRACE_S = POD["terminationGracePeriodSeconds"]


class Load:
    """Continuous traffic from CONCURRENCY clients in a thread; failures with their time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests = 0
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            latent = (await client.get("/model")).json()["latent_dim"]
            await asyncio.gather(*(self._client(client, latent, i) for i in range(CONCURRENCY)))

    async def _client(self, client: httpx.AsyncClient, latent: int, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            # /readyz of one replica is 503 while it drains, by design, until the balancer's
            # check marks it down: that is the replica's state, not a failed user request.
            plan = [p for p in requests_for(latent, rng) if p[2] != "/readyz"]
            _, method, path, kwargs, allowed = rng.choices(plan, weights=[p[0] for p in plan])[0]
            try:
                outcome = (await client.request(method, path, **kwargs)).status_code
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            self.requests += 1
            if outcome not in allowed:
                self.failures.append((time.monotonic(), f"{method} {path} -> {outcome}"))

    def more(self, count: int, timeout: float = 120) -> None:
        """Until `count` more requests have been answered (or failed) from now: traffic
        observed, whatever the machine's pace, instead of a fixed sleep."""
        target = self.requests + count
        wait_until(lambda: self.requests >= target, timeout, f"{count} more requests")

    def between(self, start: float, end: float) -> list[str]:
        return [what for t, what in self.failures if start <= t < end]

    def __enter__(self) -> "Load":
        self._thread.start()
        wait_until(lambda: self.requests >= 50, 30, "load flowing")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)


class Balancer:
    """HAProxy with scripts/container/haproxy.cfg in front of two replicas."""

    def __init__(self, replicas: dict[str, Container], workdir: Path) -> None:
        self.port = free_port()
        self.socket = workdir / "haproxy.sock"
        env = {
            "FRONTEND_PORT": str(self.port),
            "STATS_SOCKET": str(self.socket),
            "CHECK_INTER": f"{READINESS['periodSeconds']}s",
            "CHECK_TIMEOUT": f"{READINESS['timeoutSeconds']}s",
            "CHECK_FALL": str(READINESS["failureThreshold"]),
            "CHECK_RISE": str(READINESS.get("successThreshold", 1)),
        }
        env |= {f"REPLICA_{k.upper()}": f"127.0.0.1:{c.port}" for k, c in replicas.items()}
        argv = [require_tool("haproxy"), "-db", "-f", str(SCRIPTS / "haproxy.cfg")]
        self.process = Process(argv, env, workdir / "haproxy.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def states(self) -> dict[str, str]:
        """Server name -> status (UP, DOWN, "UP 1/2"...) from the stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(b"show stat\n")
            reply = b"".join(iter(lambda: s.recv(65536), b"")).decode()
        rows = csv.DictReader(reply.removeprefix("# ").splitlines())
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "vae-serve"}

    def wait_status(self, server: str, status: str, timeout: float) -> float:
        """Seconds until `server` has `status` (checked every 0.1 s)."""
        start = time.monotonic()
        wait_until(lambda: self.states().get(server) == status, timeout, f"{server} {status}", 0.1)
        return time.monotonic() - start


def test_the_haproxy_config_is_valid(tmp_path):
    env = {"FRONTEND_PORT": "8080", "REPLICA_A": "127.0.0.1:8001", "REPLICA_B": "127.0.0.1:8002"}
    env |= {"STATS_SOCKET": str(tmp_path / "s"), "CHECK_INTER": "5s", "CHECK_TIMEOUT": "3s"}
    env |= {"CHECK_FALL": "2", "CHECK_RISE": "1"}
    argv = [require_tool("haproxy"), "-c", "-f", str(SCRIPTS / "haproxy.cfg")]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def replicas(image):
    started = {name: start_container(f"replica-{name}", image) for name in ("a", "b")}
    try:
        for replica in started.values():
            replica.wait_ready()
        yield started
    finally:
        for replica in started.values():
            replica.remove()


@pytest.fixture(scope="module")
def balancer(replicas, tmp_path_factory):
    balancer = Balancer(replicas, tmp_path_factory.mktemp("haproxy"))
    try:
        for server in replicas:
            balancer.wait_status(server, "UP", 30)
        yield balancer
    finally:
        balancer.process.stop()


def test_rolling_restart_under_load_fails_no_request(replicas, balancer):
    drains, cold_starts = [], []
    with Load(balancer.url) as load:
        for name, replica in replicas.items():
            signalled = time.monotonic()
            # SIGTERM (the kubelet's, after preStop); SIGKILL only after the grace period
            podman("stop", f"--time={GRACE_S - PRESTOP_S}", replica.name, timeout=GRACE_S + 30)
            drains.append(time.monotonic() - signalled)
            assert replica.exit_code(timeout=10) == 0, replica.logs()[-2000:]
            replica.started = time.monotonic()
            podman("start", replica.name)
            cold_starts.append(replica.wait_ready())
            balancer.wait_status(name, "UP", 30)
        load.more(20 * CONCURRENCY)  # both replicas back in rotation, under load
    print(
        f"\nrolling restart at c={CONCURRENCY}: {load.requests} requests, "
        f"{len(load.failures)} failed; drain {max(drains):.1f} s, "
        f"restart to ready {max(cold_starts):.1f} s"
    )
    assert load.requests > 200
    assert load.failures == []
    # The manifests leave room for what was measured: drain within the grace period after
    # preStop, start-up within the startup probe's budget.
    assert PRESTOP_S + max(drains) < GRACE_S
    assert max(cold_starts) < STARTUP["periodSeconds"] * STARTUP["failureThreshold"]


def test_kill_9_fails_requests_only_until_the_replica_is_marked_down(replicas, balancer):
    victim = replicas["a"]
    with Load(balancer.url) as load:
        load.more(10 * CONCURRENCY)  # spread over both replicas
        killed = time.monotonic()
        podman("kill", "--signal=KILL", victim.name)
        detection_s = balancer.wait_status("a", "DOWN", 60)
        marked_down = killed + detection_s
        load.more(20 * CONCURRENCY)  # all on the survivor now
        stopped = time.monotonic()
    before, after = load.between(killed, marked_down), load.between(marked_down, stopped)
    print(
        f"\nkill -9 at c={CONCURRENCY}: {len(before)} failed before the replica was marked "
        f"down ({detection_s:.1f} s), {len(after)} after; {load.requests} requests {before[:3]}"
    )
    assert after == []
    assert len(before) <= CONCURRENCY  # at most the requests in flight on the killed replica
    budget = READINESS["periodSeconds"] * READINESS["failureThreshold"]
    assert detection_s <= budget + READINESS["timeoutSeconds"] + 1
