"""One benchmark run: the in-process limit, then each server alone, point by point."""

import datetime as dt
import os
import platform
import sys
from pathlib import Path

import httpx
import torch

from model import artifact
from scripts.bench import inprocess, loadgen, procs, servers
from scripts.bench.config import SYSTEMS, WORKLOADS, Plan, System, Workload
from scripts.bench.stats import median_of_repeats
from scripts.bench.v2 import extra_headers

READY_TIMEOUT_S = 120.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def core_split(pin: bool) -> tuple[str | None, str | None]:
    """CPU lists for (server, load generator): separate cores when pinning and there are two."""
    if not pin or (os.cpu_count() or 1) < 2:
        return None, None
    return "0", "1"


def run_inprocess(plan: Plan, model: Path, bodies: dict[str, Path], cpus: str | None) -> list:
    """The plain loop ('inprocess', one request per turn) and batched turns of c requests."""
    torch.set_num_threads(1)  # as vae-serve's default VAE_TORCH_THREADS
    module = artifact.load(model)[0]
    affinity = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, {int(cpus)})
    points = []
    try:
        for workload in selected(WORKLOADS, plan.workloads):
            if workload.vae_serve_only:
                continue
            body = bodies[workload.body].read_bytes() if workload.body else None
            every_c = plan.concurrency_of("inprocess")
            turns = [("inprocess", 1, every_c)]  # one figure, drawn at every c
            turns += [("inprocess-batched", c, (c,)) for c in every_c if c > 1]
            for name, batch, concurrencies in turns:
                figures = median_of_repeats(
                    [
                        inprocess.measure(module, workload, body, batch, plan.inprocess_duration_s)
                        for _ in range(plan.repeats)
                    ]
                )
                points += [point(name, workload, c, figures) for c in concurrencies]
                log(f"{name:18} {workload.name:13} batch={batch:<4} {figures['rps']:8.1f} req/s")
    finally:
        os.sched_setaffinity(0, affinity)
    return points


def point(system: str, workload: Workload, concurrency: int, figures: dict) -> dict:
    return {"system": system, "workload": workload.name, "concurrency": concurrency, **figures}


def selected(items, names: tuple[str, ...]) -> list:
    return [item for item in items if item.name in names]


def request_of(
    running: servers.Running, workload: Workload, body: Path | None
) -> tuple[str, str, dict[str, str]]:
    """Method, URL and headers of one `workload` request (and those written beside its body)."""
    method, url, headers = running.request(workload)
    if workload.content_type:
        headers = {**headers, "Content-Type": workload.content_type}
    return method, url, {**headers, **extra_headers(body)}


def verify(running: servers.Running, workload: Workload, body: Path | None) -> None:
    """One request by hand: a 200 with the expected kind of response, before any load."""
    method, url, headers = request_of(running, workload, body)
    content = body.read_bytes() if body else None
    response = httpx.request(method, url, headers=headers, content=content, timeout=60)
    kind = response.headers.get("content-type", "")
    default = "application/json" if workload.path == "/encode" else "image/png"
    expected = workload.response_type or default
    if response.status_code != 200 or not kind.startswith(expected):
        raise RuntimeError(f"{workload.name}: {response.status_code} {kind}: {response.text[:300]}")
    if workload.path == "/encode":
        answer = response.json()
        first = answer[0] if isinstance(answer, list) else answer
        if not {"mu", "sigma"} <= first.keys():
            raise RuntimeError(f"{workload.name}: no mu/sigma in {response.text[:300]}")


def load_point(
    plan: Plan, running: servers.Running, workload: Workload, body: Path | None, c: int, cpus
) -> dict:
    """Warm-up, then `plan.repeats` measured wrk runs with the server's CPU and RSS."""
    method, url, headers = request_of(running, workload, body)

    def wrk(seconds: int) -> dict:
        return loadgen.run_wrk(url, method, headers, body, c, seconds, plan.timeout_s, cpus)

    if plan.warmup_s > 0:
        wrk(plan.warmup_s)
    repeats = []
    for _ in range(plan.repeats):
        before = procs.usage(running.server.process.pid)
        figures = wrk(plan.duration_s)
        after = procs.usage(running.server.process.pid)
        cpu = 100 * (after["cpu_s"] - before["cpu_s"]) / figures["seconds"]
        repeats.append(
            {
                **figures,
                "cpu_percent": round(cpu, 1),
                "rss_mib": after["rss_mib"],
                "max_process_rss_mib": after["max_process_rss_mib"],
            }
        )
    return median_of_repeats(repeats)


def run_system(
    plan: Plan,
    system: System,
    model: Path,
    bodies: dict[str, Path],
    workdir: Path,
    cpus: tuple[str | None, str | None],
) -> tuple[list, list[float]]:
    """Cold starts, then every workload x concurrency against one server; (points, starts)."""
    server_cpus = None if system.all_cores else cpus[0]
    starts: list[float] = []
    for attempt in range(plan.cold_starts):
        running = servers.launch(system, model, workdir, server_cpus)
        try:
            starts.append(
                procs.wait_ready(
                    running.server, running.probe, READY_TIMEOUT_S, running.probe_headers
                )
            )
        except Exception:
            running.server.stop()
            raise
        if attempt < plan.cold_starts - 1:
            running.server.stop()
    log(f"{system.name}: cold start {', '.join(f'{s:.2f}' for s in starts)} s")
    points = []
    try:
        for workload in selected(WORKLOADS, plan.workloads):
            if workload.vae_serve_only and system.name != "vae-serve":
                continue
            body = bodies[workload.body] if workload.body else None
            verify(running, workload, body)
            for c in plan.concurrency_of(system.name):
                figures = load_point(plan, running, workload, body, c, cpus[1])
                points.append(point(system.name, workload, c, figures))
                log(
                    f"{system.name:18} {workload.name:13} c={c:<4} {figures['rps']:8.1f} req/s"
                    f"  p99 {figures['p99_ms']} ms  errors {figures['errors']}"
                )
    finally:
        running.server.stop()
    return points, starts


def run(plan: Plan, model: Path, bodies: dict[str, Path], workdir: Path, pin: bool) -> dict:
    """Every system of the plan, one after the other; a system that fails is recorded."""
    cpus = core_split(pin)
    results: dict = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "model": str(model),
            "server_cpus": cpus[0],
            "client_cpus": cpus[1],
            "load_generator": "wrk -t1 (closed loop), wrk.lua",
            "plan": plan.__dict__,
            "torchserve_model_config": servers.TORCHSERVE_MODEL,
            "versions": servers.versions(),
        },
        "points": [],
        "cold_start_s": {},
        "failures": {},
    }
    if "inprocess" in plan.systems:
        results["points"] += run_inprocess(plan, model, bodies, cpus[0])
    for system in selected(SYSTEMS, plan.systems):
        try:
            points, starts = run_system(plan, system, model, bodies, workdir, cpus)
        except Exception as e:  # e.g. TorchServe missing: the rest of the run goes on
            log(f"{system.name}: FAILED: {e}")
            results["failures"][system.name] = f"{type(e).__name__}: {e}"
            continue
        results["points"] += points
        results["cold_start_s"][system.name] = starts
    results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results
