"""Prometheus series of the service (names follow Prometheus conventions: base units, _total).

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder: every
worker then writes its samples there and /metrics aggregates them.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# protocol: "rest" or "v2" (the Open Inference Protocol under /v2). Model calls carry no
# protocol label: one batch may hold rows from both.
HTTP_LABELS = ["route", "method", "status", "protocol"]
REQUESTS = Counter("vae_http_requests_total", "HTTP requests answered", HTTP_LABELS)
REQUEST_DURATION = Histogram(
    "vae_http_request_duration_seconds",
    "Time from request received to response sent",
    HTTP_LABELS,
    buckets=LATENCY_BUCKETS,
)
# operation: the model's method (encode, decode, reconstruct...); `method` is the HTTP verb.
INFERENCE_DURATION = Histogram(
    "vae_inference_duration_seconds",
    "Time of one model call (a whole batch)",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "vae_batch_size", "Rows in one model call", ["operation"], buckets=BATCH_BUCKETS
)
# Autoscaling signals (docs/deploy.md, "Autoscaling"): how long a request waited for its
# model call, and how full each batched call was (rows / the batcher's max rows).
QUEUE_DURATION = Histogram(
    "vae_queue_duration_seconds",
    "Time from a model call's admission to the start of the batch that runs it",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
BATCH_FILL = Histogram(
    "vae_batch_fill_ratio",
    "Rows in one batched model call over the most the batcher allows",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0),
)
QUEUE_DEPTH = Gauge(
    "vae_queue_depth", "Model calls waiting or running", multiprocess_mode="livesum"
)
IN_FLIGHT = Gauge(
    "vae_requests_in_flight", "HTTP requests being served", multiprocess_mode="livesum"
)
INFLIGHT_BYTES = Gauge(
    "vae_inflight_bytes",
    "Bytes of request bodies and decoded images held against VAE_MAX_INFLIGHT_BYTES",
    multiprocess_mode="livesum",
)
IMAGES_ENCODED = Counter("vae_images_encoded_total", "Images run through the encoder")
IMAGES_DECODED = Counter("vae_images_decoded_total", "Images produced by the decoder")
FAILURES = Counter("vae_failures_total", "Requests that failed, by reason", ["reason"])
READY = Gauge("vae_ready", "1 while /readyz answers 200, else 0", multiprocess_mode="livemin")
MODEL_INFO = Gauge(
    "vae_model_info",
    "The served model (value 1)",
    ["version", "device", "latent_dim", "precision"],
    multiprocess_mode="max",
)


def exposition() -> tuple[bytes, str]:
    """The text exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
