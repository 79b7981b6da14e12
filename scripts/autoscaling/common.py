"""Shared by the autoscaling scripts: local vae-serve replicas, a request body, /metrics reads.

Everything listens on 127.0.0.1; the processes are stopped by the context managers.
"""

import contextlib
import io
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from scripts.bench.inputs import digit_pixels
from scripts.readiness import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "model" / "vae_mnist.pt"
GAUGES = ("vae_requests_in_flight", "vae_queue_depth")


def digit_png(workdir: Path) -> Path:
    """MNIST test digit 0 as a PNG file: the /encode body the load generator sends."""
    buffer = io.BytesIO()
    Image.fromarray(digit_pixels(), mode="L").save(buffer, format="PNG")
    path = workdir / "digit.png"
    path.write_bytes(buffer.getvalue())
    return path


@contextlib.contextmanager
def replica(workdir: Path, name: str, threads: int = 1) -> Iterator[str]:
    """One `python -m app.cli` on a free loopback port, as one pod runs it; yields its URL."""
    port = free_port()
    env = os.environ | {
        "VAE_MODEL_PATH": str(MODEL),
        "VAE_HOST": "127.0.0.1",
        "VAE_PORT": str(port),
        "VAE_TORCH_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "VAE_ACCESS_LOG": "false",
    }
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, 120, lambda: (workdir / f"{name}.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def gauges(url: str) -> dict[str, float]:
    """The autoscaling gauges and process CPU seconds of one replica, from its /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name in (*GAUGES, "process_cpu_seconds"):
            values[family.name] = family.samples[0].value
    return values


class Sampler(threading.Thread):
    """Reads the gauges of `url` every `interval` seconds until stopped; keeps the means."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[dict[str, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            with contextlib.suppress(OSError):
                self.samples.append(gauges(self.url))

    def stop(self) -> dict[str, float]:
        """Stop; the mean of each gauge over the samples (the /metrics read itself is one
        request in flight, so 1 is taken off vae_requests_in_flight)."""
        self.halt.set()
        self.join()
        n = max(1, len(self.samples))
        means = {g: sum(s.get(g, 0.0) for s in self.samples) / n for g in GAUGES}
        means["vae_requests_in_flight"] -= 1
        return means


def static_pods_config(pods: dict[str, str], interval: str = "1s") -> dict:
    """deploy/k8s/autoscaling/prometheus-pods.yml with pod discovery swapped for static
    targets that carry the `__meta_kubernetes_*` labels discovery would give each pod
    (pod name -> URL), so its relabelling runs as in a cluster. (Debian's Prometheus is
    built without Kubernetes discovery.)"""
    import yaml

    config = yaml.safe_load((ROOT / "deploy/k8s/autoscaling/prometheus-pods.yml").read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    (job,) = config["scrape_configs"]
    job.pop("kubernetes_sd_configs")
    job["scrape_timeout"] = interval
    job["static_configs"] = [
        {
            "targets": [url.removeprefix("http://")],
            "labels": {
                "__meta_kubernetes_namespace": "default",
                "__meta_kubernetes_pod_name": name,
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "vae-serve",
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
                "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
                "__meta_kubernetes_pod_annotation_prometheus_io_port": url.rsplit(":", 1)[1],
            },
        }
        for name, url in pods.items()
    ]
    return config


def autoscaling_queries() -> tuple[str, str]:
    """The KEDA trigger's query, and the prometheus-adapter rule's metricsQuery rendered as
    the adapter renders it for the pods of the default namespace (per pod)."""
    import yaml

    base = ROOT / "deploy/k8s/autoscaling"
    keda = yaml.safe_load((base / "keda/scaledobject.yaml").read_text())
    configmap = yaml.safe_load((base / "prometheus-adapter/adapter-config.yaml").read_text())
    (rule,) = yaml.safe_load(configmap["data"]["config.yaml"])["rules"]
    series = rule["seriesQuery"].split("{")[0].strip("'")
    adapter = (
        rule["metricsQuery"]
        .replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", 'namespace="default", pod=~".+"')
        .replace("<<.GroupBy>>", "pod")
    )
    return keda["spec"]["triggers"][0]["metadata"]["query"], adapter
