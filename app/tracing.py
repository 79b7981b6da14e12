"""Trace context for every request (W3C Trace Context), and OpenTelemetry spans when asked for.

Always on, without the OpenTelemetry SDK: a request's `traceparent` is read by the spec's rules
(parse_traceparent; an invalid one is ignored and a new trace started), and the trace id goes
into its access line, into every log record written while it is served (CURRENT, a contextvar
that TraceIdFilter reads) and back to the client in a `traceresponse` header.

With OTEL_EXPORTER_OTLP_ENDPOINT set and the otel extra installed (docs/deploy.md, "Tracing"),
FastAPI's own telemetry extracts the incoming context with the SDK's propagator and makes the
request's server span; the ids above are then that span's. This module adds the spans FastAPI
cannot see, through the OpenTelemetry API only: the queue wait, the batched model call (linked
to every request in the batch) and the post-processing.
"""

import logging
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Link, Span, StatusCode, Tracer, TracerProvider

# version-traceid-parentid-flags, lower-case hex; a later version may append "-..." fields
TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
INVALID_TRACE_ID, INVALID_SPAN_ID = "0" * 32, "0" * 16


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags) of a `traceparent` value, or None where the W3C Trace
    Context spec (section 3.2) says to ignore it: not of its form, version ff, an all-zero
    trace or parent id, or, in version 00, anything after the flags."""
    match = TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == INVALID_TRACE_ID or parent_id == INVALID_SPAN_ID:
        return None
    return trace_id, parent_id, flags


def new_id(bits: int) -> str:
    """A random non-zero id in hex (random, not os.urandom: ~0.2 us; CPython reseeds it in a
    forked worker); the SDK's RandomIdGenerator does the same."""
    value = random.getrandbits(bits) or 1
    return f"{value:0{bits // 4}x}"


@dataclass(slots=True)
class RequestTrace:
    """One request's trace: its ids, and with OpenTelemetry its server span and a tracer."""

    trace_id: str
    span_id: str  # the server's own span (its id is new whether or not a span is recorded)
    flags: str  # "01": sampled (recorded), "00": not
    span: Span | None = None  # the recording server span, None without OpenTelemetry
    tracer: Tracer | None = None
    rows: int = 0  # rows the request sent to the model
    model: str | None = None  # the model version, once the request ran it
    model_done_ns: int = 0  # when its last model call came back: post-processing starts

    def traceresponse(self) -> bytes:
        """The W3C `traceresponse` header (Trace Context Level 2): this server's ids."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode()

    def used_model(self, version: str, rows: int) -> None:
        self.model, self.rows = version, self.rows + rows

    def responding(self) -> None:
        """At the response's start: the server span's attributes, the post-processing span."""
        if self.span is None or self.model is None:
            return
        self.span.set_attributes({"vae.model": self.model, "vae.rows": self.rows})
        if self.model_done_ns and self.tracer is not None:
            span = self.tracer.start_span(
                "postprocess", trace.set_span_in_context(self.span), start_time=self.model_done_ns
            )
            span.end()


CURRENT: ContextVar[RequestTrace | None] = ContextVar("vae_request_trace", default=None)
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})


def untraced(scope: dict) -> bool:
    """FastAPI's telemetry `exclude`: health checks and metrics scrapes make no spans."""
    return scope["path"].removeprefix(scope.get("root_path", "")) in UNTRACED


class Tracers:
    """The tracer of the provider FastAPI's telemetry uses (the one given to create_app,
    else the global one), made once per provider."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.cached: tuple[TracerProvider, Tracer] | None = None

    def get(self) -> Tracer:
        provider = self.provider or trace.get_tracer_provider()
        if self.cached is None or self.cached[0] is not provider:
            self.cached = provider, provider.get_tracer("vae-serve")
        return self.cached[1]


def start(headers: dict[bytes, bytes], raw: list, tracers: Tracers) -> RequestTrace:
    """The request's trace: the server span's ids where FastAPI's telemetry made one (it is
    current here), else the incoming `traceparent`'s trace id with a new span id, else a new
    trace. Several `traceparent` headers are invalid too (the spec's test suite)."""
    span = trace.get_current_span()
    context = span.get_span_context()
    if context.is_valid:
        recording = span.is_recording()
        return RequestTrace(
            f"{context.trace_id:032x}",
            f"{context.span_id:016x}",
            f"{context.trace_flags:02x}",
            span if recording else None,
            tracers.get() if recording else None,
        )
    value = headers.get(b"traceparent")
    parent = None
    if value is not None and sum(name == b"traceparent" for name, _ in raw) == 1:
        parent = parse_traceparent(value.decode("latin-1"))
    trace_id = parent[0] if parent is not None else new_id(128)
    return RequestTrace(trace_id, new_id(64), "00")  # "00": nothing recorded


class TraceIdFilter(logging.Filter):
    """Gives every record written while a request is served its trace id (JSON: trace_id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = CURRENT.get()
        if current is not None and getattr(record, "trace_id", None) is None:
            record.trace_id = current.trace_id
        return True


@dataclass(slots=True)
class ModelCall:
    """One request's call of an operation, while traced: when it was queued."""

    request: RequestTrace
    rows: int
    queued_ns: int = field(default_factory=time.time_ns)


def model_call(model: str, rows: int) -> ModelCall | None:
    """The current request's call of the model, to trace; None unless its span records."""
    request = CURRENT.get()
    if request is None or request.tracer is None:
        return None
    request.used_model(model, rows)
    return ModelCall(request, rows)


def record_model_call(
    calls: list[ModelCall],
    operation: str,
    model: str,
    started_ns: int,
    ended_ns: int,
    error: BaseException | None,
) -> None:
    """The spans of one model call serving `calls` (a batch, or one request unbatched): each
    request's "queue {operation}" span, from its submission to the call's start, under its
    request span; and one "model {operation}" span for the call, linked to every request
    span of the batch (it has no single parent), in the first traced request's trace."""
    rows = sum(c.rows for c in calls)
    links = []
    for call in calls:
        parent = trace.set_span_in_context(call.request.span)
        queued = call.request.tracer.start_span(
            f"queue {operation}",
            parent,
            attributes={"vae.operation": operation, "vae.rows": call.rows},
            start_time=call.queued_ns,
        )
        queued.end(started_ns)
        links.append(Link(call.request.span.get_span_context(), {"vae.rows": call.rows}))
    first = calls[0].request
    span = first.tracer.start_span(
        f"model {operation}",
        trace.set_span_in_context(first.span),
        links=links,
        attributes={
            "vae.operation": operation,
            "vae.model": model,
            "vae.batch.rows": rows,
            "vae.batch.requests": len(calls),
        },
        start_time=started_ns,
    )
    if error is not None:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, type(error).__name__)
    span.end(ended_ns)
