"""The FastAPI application: `uvicorn app.main:app` (or `vae-serve`).

The lifespan loads the TorchScript model once, warms it up, then reports ready; on SIGTERM
readiness turns false at once while uvicorn lets in-flight requests finish.
"""

import gc
import logging
import signal
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from opentelemetry.trace import TracerProvider

from app import deadlines, metrics, tracing
from app.errors import install_error_handlers
from app.inference import ModelLoadError, ModelService
from app.logs import AccessLog, configure_logging
from app.memory import MemoryBudget
from app.middleware import RequestContextMiddleware
from app.openapi import openapi_schema
from app.routers import demo, encoding, generation, health, info, scoring, v2
from app.security import require_api_key
from app.settings import Settings, get_settings

log = logging.getLogger("app")
GC_YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation


def drain_on_sigterm(app: FastAPI) -> None:
    """Chain a handler before the server's own: readiness turns false the moment SIGTERM lands."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:  # not in the main thread (e.g. under a test client)
        return

    def handler(signum, frame):
        app.state.draining = True
        metrics.READY.set(0)
        log.info("SIGTERM received: draining in-flight requests")
        if callable(previous):
            previous(signum, frame)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    configure_logging(settings.log_level, settings.log_format)
    try:
        model = ModelService.load(settings)
    except ModelLoadError as e:
        log.error("cannot start: %s", e)
        raise
    model.start()
    app.state.model = model
    app.state.decode_limiter = anyio.CapacityLimiter(settings.decode_threads)
    if settings.warmup:
        await model.warm_up()
    # Start-up objects (torch, FastAPI, the model) never die: move them out of the garbage
    # collector's sight, or every full collection walks them all (p99 of encode at c=32 fell
    # from ~110 ms to ~15 ms with this, docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    # A young-generation collection every 10,000 net allocations of container objects, not
    # 700: at c=32 one ran every ~8 requests; this gave +5-10 % req/s on /sample?n=1 and
    # +5-8 % on /encode (side by side, 3 rounds each), and 50,000 nothing more (1.00).
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    app.state.ready = True
    metrics.READY.set(1)
    drain_on_sigterm(app)
    log.info(
        "ready: model %s (latent %d) on %s in %s, batching %s",
        model.version,
        model.latent_dim,
        model.device,
        settings.precision,
        "on" if settings.batching else "off",
    )
    try:
        yield
    finally:
        app.state.ready = False
        app.state.draining = True
        metrics.READY.set(0)
        await model.close()
        if app.state.access_log is not None:
            app.state.access_log.flush()
        log.info("stopped")


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The application; spans go to `tracer_provider` (tests), else to the global provider,
    which FastAPI sets up from OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables
    (docs/deploy.md, "Tracing"): the request's span is FastAPI's own, with the SDK's
    propagator; app.tracing adds the queue, model and post-processing spans. Not set up, no
    span is made (the trace id is still read or started: app.tracing)."""
    settings = settings or get_settings()
    telemetry = {
        "tracer_provider": tracer_provider,
        "auto_configure": True,  # exporters only where OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
        "metrics": False,  # Prometheus has them (/metrics)
        "logs": False,  # logs go to stderr, with their trace ids
        "operation_spans": False,  # the spans of app.tracing instead
        "exclude": tracing.untraced,  # health checks and metrics scrapes
    }
    # /docs (Swagger UI) and /redoc with their scripts and styles served by the service itself
    # (fastapi-offline bundles them), so the API pages work without internet access.
    app = FastAPIOffline(
        title="vae-serve",
        version="1.0.0",
        summary="A variational autoencoder for MNIST digits: encode, decode, sample, reconstruct.",
        lifespan=lifespan,
        telemetry=telemetry,
    )
    app.state.settings = settings
    app.state.model = None
    app.state.ready = False
    app.state.draining = False
    app.openapi = lambda: openapi_schema(app)
    install_error_handlers(app)
    keyed = [Depends(require_api_key)] if settings.api_key is not None else []
    for router in (encoding.router, scoring.router, generation.router, info.router, v2.router):
        app.include_router(router, dependencies=keyed)
    for router in (health.router, v2.probes, demo.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=demo.STATIC_DIR), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[
                "Content-Type",
                "X-API-Key",
                "Authorization",
                "X-Request-ID",
                "Inference-Header-Content-Length",
                "traceparent",
                "tracestate",
                deadlines.HEADER,
            ],
            expose_headers=[
                "X-Request-ID",
                "X-Seed",
                "Inference-Header-Content-Length",
                "traceresponse",
            ],
        )
    logs_requests = settings.access_log and settings.log_level.upper() in ("DEBUG", "INFO")
    flush_s = settings.access_log_flush_ms / 1000
    access_log = AccessLog(settings.log_format, flush_s=flush_s) if logs_requests else None
    app.state.access_log = access_log
    app.state.memory_budget = MemoryBudget(settings.max_inflight_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_upload_bytes,
        max_json_bytes=settings.max_json_bytes,
        budget=app.state.memory_budget,
        access_log=access_log,
        tracers=tracing.Tracers(tracer_provider),
    )
    return app


app = create_app()
