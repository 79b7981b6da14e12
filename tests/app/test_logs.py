"""Log lines: the access log (one per request, with its request id) and the JSON format."""

import asyncio
import io
import json
import logging
import re
import time

import pytest
from fastapi.testclient import TestClient

from app.logs import AccessLog, JSONFormatter, utc_timestamp
from app.main import create_app
from tests.helpers import wait_until

UTC_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_access_log_json_line():
    stream = io.StringIO()
    AccessLog("json", stream).write("id-1", "POST", "/encode", "/encode", 200, 0.01234, "10.0.0.2")
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    entry = json.loads(line)
    assert UTC_MILLIS.match(entry.pop("time"))
    assert entry == {
        "level": "INFO",
        "logger": "app.access",
        "message": "POST /encode 200 12.3ms",
        "request_id": "id-1",
        "method": "POST",
        "path": "/encode",
        "route": "/encode",
        "status": 200,
        "duration_ms": 12.34,
        "client": "10.0.0.2",
    }


def test_access_log_text_line_matches_the_other_text_logs():
    stream = io.StringIO()
    AccessLog("text", stream).write("id-2", "GET", "/sample", "/sample", 503, 0.002, "")
    assert re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO app\.access GET /sample 503 2\.0ms\n$",
        stream.getvalue(),
    )


def test_json_formatter_carries_request_fields():
    record = logging.LogRecord("app.errors", logging.ERROR, "f", 1, "boom %s", ("x",), None)
    record.request_id = "id-3"
    entry = json.loads(JSONFormatter().format(record))
    assert UTC_MILLIS.match(entry["time"])
    assert (entry["level"], entry["message"], entry["request_id"]) == ("ERROR", "boom x", "id-3")


def access_lines(err: str) -> list[dict]:
    return [e for e in map(json.loads, err.splitlines()) if e.get("logger") == "app.access"]


@pytest.mark.parametrize(
    ("overrides", "logged"),
    [({}, True), ({"access_log": False}, False), ({"log_level": "WARNING"}, False)],
)
def test_service_writes_one_access_line_per_request(make_client, capsys, overrides, logged):
    client = make_client(log_format="json", access_log_flush_ms=0, **overrides)
    capsys.readouterr()
    client.get("/healthz", headers={"x-request-id": "req-42"})
    client.get("/nowhere")
    lines = access_lines(capsys.readouterr().err)
    if not logged:
        assert lines == []
        return
    assert [(e["request_id"], e["route"], e["status"]) for e in lines] == [
        ("req-42", "/healthz", 200),
        (lines[1]["request_id"], "<unmatched>", 404),
    ]
    assert len(lines[1]["request_id"]) == 32  # generated


def test_text_access_line_stays_one_line_for_any_path():
    stream = io.StringIO()
    AccessLog("text", stream).write("id", "GET", "/a\nFAKE 200\r", "<unmatched>", 404, 0.001, "")
    assert stream.getvalue().count("\n") == 1
    assert "/a\\nFAKE 200\\r 404" in stream.getvalue()


def test_access_lines_are_buffered_then_written_together_in_order(make_client, capsys):
    window_s = 1.0
    client = make_client(log_format="json", access_log_flush_ms=window_s * 1000)
    capsys.readouterr()
    sent = time.monotonic()  # the window opens after this, at the first request
    for i in range(3):
        client.get("/healthz", headers={"x-request-id": f"buffered-{i}"})
    early = access_lines(capsys.readouterr().err)
    if time.monotonic() - sent < window_s:  # read inside the window (unless the runner stalled)
        assert early == []
    written = early

    def all_written() -> bool:  # the write itself, not a guessed time
        written.extend(access_lines(capsys.readouterr().err))
        return len(written) >= 3

    wait_until(all_written, 30, "the buffered access lines not written")
    assert [e["request_id"] for e in written] == ["buffered-0", "buffered-1", "buffered-2"]


def test_pending_access_lines_are_written_at_shutdown(settings_for, capsys):
    settings = settings_for(log_format="json", access_log_flush_ms=10_000)
    with TestClient(create_app(settings)) as client:
        client.get("/healthz", headers={"x-request-id": "last-words"})
    # the lifespan's shutdown wrote it
    assert [e["request_id"] for e in access_lines(capsys.readouterr().err)] == ["last-words"]


def test_a_full_buffer_is_written_at_once():
    stream = io.StringIO()
    log = AccessLog("json", stream, flush_s=60)

    async def burst() -> None:
        for i in range(AccessLog.MAX_PENDING):
            log.write(f"id-{i}", "GET", "/healthz", "/healthz", 200, 0.001, "")

    asyncio.run(burst())
    assert stream.getvalue().count("\n") == AccessLog.MAX_PENDING and log.pending == []


def test_utc_timestamp_is_exact_to_the_millisecond():
    assert utc_timestamp(1764561444.0579) == "2025-12-01T03:57:24.057Z"
    assert utc_timestamp(1764561445.999) == "2025-12-01T03:57:25.999Z"
