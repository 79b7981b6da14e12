"""A step in load against two replicas: the queue signal crosses its target, CPU does not say.

    python -m scripts.autoscaling.step [--low 4] [--high 64] [--before 15] [--after 30]

Starts two `python -m app.cli` replicas ("pods" vae-serve-a and -b, 1 torch thread each),
HAProxy round-robin in front of them (as the Service spreads connections), and a local
Prometheus scraping both every second with the relabelling of
deploy/k8s/autoscaling/prometheus-pods.yml. wrk keeps --low /encode requests in flight
through HAProxy for --before seconds, then --high for --after seconds. Every second it
prints what the autoscalers would read from Prometheus: the prometheus-adapter query per
pod, the KEDA query divided by the 2 replicas, and each pod's CPU use (cores, from
process_cpu_seconds_total: what a CPU HPA sees against a 1-CPU request). Loopback only.
"""

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from scripts.autoscaling.common import (
    autoscaling_queries,
    digit_png,
    replica,
    static_pods_config,
)
from scripts.bench.loadgen import run_wrk
from scripts.readiness import free_port, wait_ready

TARGET = 8.0  # the queue depth per pod the ScaledObject and the HPA aim at
HAPROXY = """global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:{port}
    default_backend pods
backend pods
    balance roundrobin
{servers}
"""


def query(prometheus: str, expr: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def by_pod(result: list[dict]) -> dict[str, float]:
    return {s["metric"].get("pod", ""): float(s["value"][1]) for s in result}


def start(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--low", type=int, default=4, help="default: %(default)s")
    p.add_argument("--high", type=int, default=64, help="default: %(default)s")
    p.add_argument("--before", type=int, default=15, help="seconds at --low; default: %(default)s")
    p.add_argument("--after", type=int, default=30, help="seconds at --high; default: %(default)s")
    args = p.parse_args()
    assert args.high <= 128 and args.before + args.after <= 90, "bounded load only"
    keda_query, adapter_query = autoscaling_queries()
    cpu_query = "rate(process_cpu_seconds_total[5s])"
    with (
        tempfile.TemporaryDirectory(prefix="step-") as tmp,
        replica(Path(tmp), "a") as url_a,
        replica(Path(tmp), "b") as url_b,
    ):
        work = Path(tmp)
        pods = {"vae-serve-a": url_a, "vae-serve-b": url_b}
        lb_port, prom_port = free_port(), free_port()
        servers = "\n".join(
            f"    server {name} {url.removeprefix('http://')}" for name, url in pods.items()
        )
        (work / "haproxy.cfg").write_text(HAPROXY.format(port=lb_port, servers=servers))
        (work / "prometheus.yml").write_text(yaml.safe_dump(static_pods_config(pods)))
        processes = [
            start(
                [shutil.which("haproxy") or "haproxy", "-f", str(work / "haproxy.cfg")],
                work / "haproxy.log",
            ),
            start(
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                work / "prometheus.log",
            ),
        ]
        prometheus = f"http://127.0.0.1:{prom_port}"
        try:
            lb = f"http://127.0.0.1:{lb_port}"
            wait_ready(lb, processes[0], 10, probe="/readyz")
            wait_ready(prometheus, processes[1], 30, probe="/-/ready")
            body = digit_png(work)
            time.sleep(6)  # a few idle scrapes first
            results: dict[str, dict] = {}

            def load() -> None:
                for phase, c, seconds in (
                    ("low", args.low, args.before),
                    ("high", args.high, args.after),
                ):
                    results[phase] = run_wrk(
                        lb + "/encode",
                        "POST",
                        {"Content-Type": "image/png"},
                        body,
                        c,
                        seconds,
                        10,
                        None,
                    )

            loader = threading.Thread(target=load)
            started = time.monotonic()
            loader.start()
            print("  t  c | adapter: queue/pod a    b | KEDA: sum/2 | raw gauge a  b | CPU a    b")
            crossed = None
            while loader.is_alive():
                time.sleep(1 - (time.monotonic() - started) % 1)
                t = time.monotonic() - started
                c = args.low if t < args.before else args.high
                adapter = by_pod(query(prometheus, adapter_query))
                keda = sum(float(s["value"][1]) for s in query(prometheus, keda_query)) / 2
                raw = by_pod(query(prometheus, "vae_queue_depth"))
                cpu = by_pod(query(prometheus, cpu_query))
                if crossed is None and t >= args.before and keda > TARGET:
                    crossed = t - args.before
                print(
                    f"{t:3.0f} {c:2d} | {adapter.get('vae-serve-a', 0):20.1f} "
                    f"{adapter.get('vae-serve-b', 0):4.1f} | {keda:11.1f} | "
                    f"{raw.get('vae-serve-a', 0):11.0f} {raw.get('vae-serve-b', 0):2.0f} | "
                    f"{cpu.get('vae-serve-a', 0):12.2f} {cpu.get('vae-serve-b', 0):4.2f}",
                    flush=True,
                )
            loader.join()
            for phase in ("low", "high"):
                r = results[phase]
                print(
                    f"{phase}: {r['rps']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                    f"errors {r['errors']}"
                )
            print(
                f"KEDA query per pod crossed {TARGET:g}: "
                + (f"{crossed:.0f} s after the step" if crossed is not None else "never")
            )
        finally:
            for process in processes:
                process.terminate()
                process.wait(15)


if __name__ == "__main__":
    main()
