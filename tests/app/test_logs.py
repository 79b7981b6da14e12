"""Log lines: the access log (one per request, with its request id) and the JSON format."""

import io
import json
import logging
import re

import pytest

from app.logs import AccessLog, JSONFormatter

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
    client = make_client(log_format="json", **overrides)
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
