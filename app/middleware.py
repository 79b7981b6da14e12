"""The outermost layer of every request (pure ASGI: no BaseHTTPMiddleware task).

It gives each request an id (X-Request-ID, echoed back), refuses bodies over the upload
limit (or the smaller JSON limit) before they are read (413), and bodies past the memory
budget of all requests together (app.memory: 503 `memory_budget`), turns any unhandled
exception into a JSON 500, counts and times the request by route template, and writes one
access-log record. It stamps the arrival that deadlines count from (app.deadlines) and drops
the work of a client that disconnects (app.disconnects: status 499).
"""

import asyncio
import itertools
import logging
import os
import re
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import limits, metrics, tracing
from app.disconnects import DisconnectWatcher, has_body
from app.errors import error_response, is_v2
from app.logs import AccessLog
from app.media import parsed_as_json
from app.memory import TRIM_AFTER_BYTES, BudgetExceeded, MemoryBudget, Trimmer

error_log = logging.getLogger("app.errors")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else is replaced, not trusted


class RequestIds:
    """Generated request ids: 32 hex digits, a random prefix per process and a counter.

    Unique across workers and restarts as uuid4 would be, at a tenth of its cost (no
    os.urandom call per request); a forked worker draws its own prefix.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix, self.counter = os.urandom(8).hex(), itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


REQUEST_IDS = RequestIds()


def route_template(scope: Scope, root_path: str) -> str:
    """The route's path template, a bounded label value: FastAPI's routes put themselves in
    the scope once matched; /docs, /openapi.json and the /static mount do not, so they are
    matched again here (on the path as it came in); else "<unmatched>"."""
    route = scope.get("route")
    if route is not None:
        return route.path
    probe = {"type": "http", "path": scope["path"], "method": scope["method"]}
    probe["root_path"] = root_path
    for candidate in getattr(scope.get("app"), "routes", ()):
        if hasattr(candidate, "path") and candidate.matches(probe)[0] != Match.NONE:
            return candidate.path
    return "<unmatched>"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_json_bytes: int,
        budget: MemoryBudget | None = None,
        access_log: AccessLog | None = None,
        tracers: tracing.Tracers | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes  # JSON is parsed on the event loop: keep it small
        self.budget = budget or MemoryBudget(2**63)  # bodies and decoded images held at once
        self.trimmer = Trimmer()  # RSS back near its baseline after large bodies
        self.access_log = access_log  # None: VAE_ACCESS_LOG=false, or a level above INFO
        self.series: dict[tuple[str, ...], tuple] = {}  # labels -> (counter, histogram)
        self.tracers = tracers or tracing.Tracers()  # for the spans beside FastAPI's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else REQUEST_IDS.next()
        limit, kind = self.max_body_bytes, limits.BODY_BYTES
        if parsed_as_json(headers.get(b"content-type")) and self.max_json_bytes < limit:
            limit, kind = self.max_json_bytes, limits.JSON_BYTES
        scope.setdefault("state", {})["request_id"] = request_id
        trace = tracing.start(headers, scope["headers"], self.tracers)
        trace_token = tracing.CURRENT.set(trace)  # log records carry its trace id
        scope["state"]["arrived"] = started  # deadlines count from here (app.deadlines)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                watcher.responded = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    (b"traceresponse", trace.traceresponse()),
                ]
                trace.responding()
            await send(message)

        received = 0
        declared = headers.get(b"content-length")
        declared_size = int(declared) if declared is not None and declared.isdigit() else 0
        body = has_body(headers)
        # The budget is asked for the declared length, or the limit when none is declared
        # (chunked), and trued down to what came once the body is complete.
        wanted = declared_size if declared is not None else limit if body else 0
        budget, held = self.budget, 0

        async def limited_receive() -> Message:
            nonlocal received, wanted, held
            if declared_size > limit:  # refused before a byte is read, once routed
                raise limits.BodyTooLarge(kind, declared_size, limit)
            if wanted:  # the route's first read: admitted, or refused before a byte is read
                if not budget.reserve(wanted):
                    raise BudgetExceeded(wanted, budget)
                held, wanted = wanted, 0
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise limits.BodyTooLarge(kind, f"more than {limit}", limit)
            if held > received and not message.get("more_body", False):
                budget.release(held - received)
                held = received
            return message

        watcher = DisconnectWatcher(limited_receive, receive, body)
        metrics.IN_FLIGHT.inc()
        root_path = scope.get("root_path", "")
        try:
            await self.app(scope, watcher.receive, send_with_id)
        except asyncio.CancelledError:
            if not watcher.abandoned:  # not the watcher's: the server's own cancellation
                raise
            status = watcher.settle()
        except Exception as e:
            error_log.error(
                "unhandled %s on %s %s: %s",
                type(e).__name__,
                scope["method"],
                scope["path"],
                e,
                extra={"request_id": request_id},
            )
            if not response_started:
                metrics.FAILURES.labels("internal_error").inc()
                detail = "the server failed to handle this request"
                response = error_response(500, "internal_error", detail, path=scope["path"])
                await response(scope, receive, send_with_id)
        finally:
            watcher.stop()
            if held:
                budget.release(held)
                if held >= TRIM_AFTER_BYTES and budget.held < TRIM_AFTER_BYTES:
                    self.trimmer.soon()  # the last large body: RSS back near its baseline
            metrics.IN_FLIGHT.dec()
            template = route_template(scope, root_path)
            seconds = time.perf_counter() - started
            self.record(scope, template, status, seconds, request_id, trace.trace_id)
            tracing.CURRENT.reset(trace_token)

    def record(
        self,
        scope: Scope,
        template: str,
        status: int,
        seconds: float,
        request_id: str,
        trace_id: str,
    ) -> None:
        protocol = "v2" if is_v2(scope["path"]) else "rest"
        labels = (template, scope["method"], str(status), protocol)
        series = self.series.get(labels)
        if series is None:  # labels() costs ~2 us a call: looked up once per label set
            series = metrics.REQUESTS.labels(*labels), metrics.REQUEST_DURATION.labels(*labels)
            self.series[labels] = series
        series[0].inc()
        series[1].observe(seconds)
        if self.access_log is not None:
            client = (scope.get("client") or ("", 0))[0]
            self.access_log.write(
                request_id,
                scope["method"],
                scope["path"],
                template,
                status,
                seconds,
                client,
                trace_id,
            )
