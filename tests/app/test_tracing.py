"""Trace context: traceparent read by the W3C rules (or a trace started), the trace id in the
access line, in log records and in `traceresponse`; OpenTelemetry spans with the SDK's
in-memory exporter (request, queue wait, batched model call linked to each request,
post-processing; none for health and metrics)."""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.main import create_app
from app.tracing import parse_traceparent
from tests.helpers import wait_until

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (TRACEPARENT, (TRACE, PARENT, "01")),
        (f" 00-{TRACE}-{PARENT}-00\t", (TRACE, PARENT, "00")),  # optional whitespace
        (f"cc-{TRACE}-{PARENT}-01-what-the-future-holds", (TRACE, PARENT, "01")),
        (f"cc-{TRACE}-{PARENT}-01", (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four fields
        (f"cc-{TRACE}-{PARENT}-01x", None),  # a later version's next field starts with "-"
        (f"ff-{TRACE}-{PARENT}-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE.upper()}-{PARENT}-01", None),  # upper-case hex
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),
        (f"00_{TRACE}_{PARENT}_01", None),
        (f"00-{TRACE}-{PARENT}-0g", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_traceparent_by_the_spec(value, parsed):
    assert parse_traceparent(value) == parsed


def access_lines(err: str) -> list[dict]:
    return [e for e in map(json.loads, err.splitlines()) if e.get("logger") == "app.access"]


def traceresponse(response) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    assert version == "00" and len(span_id) == 16 and span_id != "0" * 16
    return trace_id, span_id, flags


def test_incoming_trace_id_in_response_and_access_line(make_client, capsys):
    client = make_client(log_format="json", access_log_flush_ms=0)
    capsys.readouterr()
    response = client.get("/sample", headers={"traceparent": TRACEPARENT, "tracestate": "a=b"})
    assert response.status_code == 200
    trace_id, span_id, flags = traceresponse(response)
    assert (trace_id, flags) == (TRACE, "00")  # nothing recorded without OpenTelemetry
    assert span_id != PARENT  # this server's own span id
    [line] = access_lines(capsys.readouterr().err)
    assert line["trace_id"] == TRACE and line["route"] == "/sample"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": f"00-{'0' * 32}-{PARENT}-01"},
        {"traceparent": "00-nonsense"},
        {"traceparent": "\u00e9t\u00e9".encode()},  # not ASCII
        [("traceparent", TRACEPARENT), ("traceparent", f"00-{'1' * 32}-{PARENT}-01")],
    ],
)
def test_missing_or_invalid_traceparent_starts_a_new_trace(client, headers):
    responses = [client.get("/healthz", headers=headers) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    ids = [traceresponse(r)[0] for r in responses]
    assert ids[0] != ids[1] and TRACE not in ids and all(len(i) == 32 for i in ids)
    assert all(int(i, 16) for i in ids)


def test_log_records_of_a_request_carry_its_trace_id(make_client, capsys):
    client = make_client(log_format="json", access_log_flush_ms=0)

    @client.app.get("/logs-something")
    async def logs_something() -> dict:
        logging.getLogger("app.test").warning("while serving")
        return {}

    capsys.readouterr()
    response = client.get("/logs-something", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [record] = [e for e in lines if e["logger"] == "app.test"]
    assert record["trace_id"] == TRACE and record["message"] == "while serving"
    logging.getLogger("app.test").warning("outside a request")
    [outside] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert "trace_id" not in outside


@pytest.fixture
def traced(settings_for):
    """A started app whose spans go to an in-memory exporter: (client, exporter)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(settings_for(), tracer_provider=provider)) as client:
        exporter.clear()  # warm-up makes none, but be sure
        yield client, exporter


def by_name(exporter) -> dict[str, list]:
    spans: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_spans_of_one_request(traced):
    client, exporter = traced
    response = client.get("/sample?n=3", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    spans = by_name(exporter)
    assert set(spans) == {"GET /sample", "queue decode", "model decode", "postprocess"}
    [request] = spans["GET /sample"]
    assert request.kind == SpanKind.SERVER
    assert request.context.trace_id == int(TRACE, 16)
    assert request.parent.span_id == int(PARENT, 16) and request.parent.is_remote
    attributes = request.attributes
    assert attributes["http.route"] == "/sample"
    assert attributes["http.response.status_code"] == 200
    assert attributes["vae.model"] == client.app.state.model.version
    assert attributes["vae.rows"] == 3
    for name in ("queue decode", "model decode", "postprocess"):
        [span] = spans[name]
        assert span.context.trace_id == int(TRACE, 16)
        assert span.parent.span_id == request.context.span_id
    [queued], [model], [post] = spans["queue decode"], spans["model decode"], spans["postprocess"]
    assert queued.end_time <= model.start_time <= model.end_time <= post.start_time
    assert model.attributes["vae.batch.rows"] == 3 and model.attributes["vae.batch.requests"] == 1
    assert [link.context.span_id for link in model.links] == [request.context.span_id]
    trace_id, span_id, flags = traceresponse(response)
    assert (trace_id, span_id, flags) == (TRACE, f"{request.context.span_id:016x}", "01")


def test_batch_span_links_every_request_of_the_batch(traced):
    client, exporter = traced
    service = client.app.state.model
    batcher = service.batcher(service.operations["decode"], ())
    parents = [f"00-{i:032x}-{i:016x}-01" for i in range(1, 5)]
    gate = threading.Event()
    service.executor.submit(gate.wait)  # the inference thread is busy: requests queue
    with ThreadPoolExecutor(4) as pool:

        def send(parent: str):
            return pool.submit(client.get, "/sample?n=2", headers={"traceparent": parent})

        try:  # the first request's batch waits for the thread; the other three queue behind it
            futures = [send(parents[0])]
            wait_until(lambda: service.outstanding == 1 and not batcher.pending, 30, "first taken")
            futures += [send(p) for p in parents[1:]]
            wait_until(lambda: len(batcher.pending) == 3, 30, "three requests queued")
        finally:
            gate.set()  # never left blocked: the requests would wait forever
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 4
    spans = by_name(exporter)
    requests = {s.context.span_id: s for s in spans["GET /sample"]}
    assert {s.context.trace_id for s in requests.values()} == set(range(1, 5))
    assert len(spans["queue decode"]) == 4 and len(spans["postprocess"]) == 4
    alone, batch = sorted(spans["model decode"], key=lambda s: len(s.links))
    assert batch.attributes["vae.batch.requests"] == 3 and batch.attributes["vae.batch.rows"] == 6
    linked = {link.context.span_id for link in alone.links + batch.links}
    assert linked == set(requests) and len(batch.links) == 3
    assert all(link.attributes["vae.rows"] == 2 for link in batch.links)
    for link in batch.links:  # each request's queue wait ends as the batch starts
        [queued] = [s for s in spans["queue decode"] if s.parent.span_id == link.context.span_id]
        assert queued.end_time == batch.start_time


def test_health_and_metrics_make_no_spans(traced):
    client, exporter = traced
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"):
        response = client.get(path, headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200, path
        assert traceresponse(response)[0] == TRACE  # the trace id is still read
    assert exporter.get_finished_spans() == ()


def test_errors_are_spans_with_their_status(traced):
    client, exporter = traced
    response = client.post("/decode", json={"z": [[0.0]]})  # wrong latent size
    assert response.status_code == 422
    [span] = exporter.get_finished_spans()
    assert span.name == "POST /decode"
    assert span.attributes["http.response.status_code"] == 422
