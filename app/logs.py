"""Structured logging: one JSON object per line (or plain text), with the request and trace ids."""

import asyncio
import functools
import logging
import sys
import time
from typing import TextIO

import orjson

from app.tracing import TraceIdFilter

EXTRA_FIELDS = (
    "request_id",
    "trace_id",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "client",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@functools.lru_cache(maxsize=4)
def utc_second(second: int) -> str:
    """strftime once per second, not once per line (~3 us each)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def utc_timestamp(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-11-30T03:57:24.057Z."""
    return f"{utc_second(int(seconds))}.{int(seconds % 1 * 1000):03d}Z"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, then the trace id of a record written while a request was served."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        return line if trace_id is None else f"{line} trace_id={trace_id}"


class AccessLog:
    """One line per request on stderr, in the format of the other logs (JSON or text).

    Written directly, not through a logging.Logger: a record, its handler and formatter
    cost ~40 us per request in the service, 10 % of /sample throughput. And written in
    batches: the lines of up to `flush_s` seconds (VAE_ACCESS_LOG_FLUSH_MS) go out in one
    write, because a write per line (stderr is line-buffered) cost ~25 % of /sample?n=1
    throughput at c=32 (docs/benchmarks.md). flush() runs at shutdown too; a killed
    process loses at most that many seconds of access lines, never an error log.
    """

    MAX_PENDING = 512  # lines: written at once past this, whatever the time

    def __init__(self, fmt: str = "json", stream: TextIO | None = None, flush_s: float = 0.0):
        self.json = fmt == "json"
        self.stream = stream or sys.stderr
        self.flush_s = flush_s
        self.pending: list[str] = []

    def emit(self, line: str) -> None:
        """`line` now (flush_s 0, or no event loop), or with the others at the next flush."""
        if self.flush_s <= 0:
            self.stream.write(line)
            return
        if not self.pending:
            try:
                asyncio.get_running_loop().call_later(self.flush_s, self.flush)
            except RuntimeError:  # called outside the event loop
                self.stream.write(line)
                return
        self.pending.append(line)
        if len(self.pending) >= self.MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.stream.write("".join(lines))
            self.stream.flush()

    def write(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        client: str,
        trace_id: str | None = None,
    ) -> None:
        now = time.time()
        if not self.json:
            shown = path if path.isprintable() else path.encode("unicode_escape").decode()
            local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            self.emit(
                f"{local},{int(now % 1 * 1000):03d} INFO app.access "
                f"{method} {shown} {status} {seconds * 1000:.1f}ms"  # one line, whatever the path
                f"{'' if trace_id is None else f' trace_id={trace_id}'}\n"
            )
            return
        entry = {
            "time": utc_timestamp(now),
            "level": "INFO",
            "logger": "app.access",
            "message": f"{method} {path} {status} {seconds * 1000:.1f}ms",  # JSON escapes it
            "request_id": request_id,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client,
        }
        if trace_id is not None:
            entry["trace_id"] = trace_id
        self.emit(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE).decode())


class DropHandledStartupTraceback(logging.Filter):
    """Starlette hands uvicorn the whole traceback of a failed start-up. A ModelLoadError
    has already been logged by the lifespan in one line that says what is wrong, so its
    traceback is noise in front of the operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "uvicorn.error" and "ModelLoadError" in record.getMessage())


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route the app's and uvicorn's logs through one handler; AccessLog replaces uvicorn's
    access log (which has no request id)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    handler.addFilter(DropHandledStartupTraceback())
    handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
