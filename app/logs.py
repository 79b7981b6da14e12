"""Structured logging: one JSON object per line (or plain text), with the request id."""

import logging
import sys
import time

import orjson

EXTRA_FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms", "client")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        return orjson.dumps(entry, default=str).decode()  # one per request: keep it cheap


class DropHandledStartupTraceback(logging.Filter):
    """Starlette hands uvicorn the whole traceback of a failed start-up. A ModelLoadError
    has already been logged by the lifespan in one line that says what is wrong, so its
    traceback is noise in front of the operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "uvicorn.error" and "ModelLoadError" in record.getMessage())


def configure_logging(level: str = "INFO", fmt: str = "json", access_log: bool = True) -> None:
    """Route the app's and uvicorn's error logs through one handler; our access log replaces
    uvicorn's (which has no request id)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(DropHandledStartupTraceback())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("app.access").disabled = not access_log
