"""The outermost layer of every request (pure ASGI, no per-request task overhead).

It gives each request an id (X-Request-ID, echoed back), refuses bodies over the upload
limit (or the smaller JSON limit) before they are read (413), turns any unhandled exception
into a JSON 500, counts and times the request by route template, and writes one access-log
record.
"""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import limits, metrics
from app.errors import error_response, is_v2
from app.logs import AccessLog

error_log = logging.getLogger("app.errors")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else is replaced, not trusted


class BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_json_bytes: int,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes  # JSON is parsed on the event loop: keep it small
        self.access_log = access_log  # None: VAE_ACCESS_LOG=false, or a level above INFO

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        is_json = headers.get(b"content-type", b"").startswith(b"application/json")
        limit = self.max_json_bytes if is_json else self.max_body_bytes
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(f"more than {limit}")
            return message

        metrics.IN_FLIGHT.inc()
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise BodyTooLarge(int(declared))
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge as too_large:
            if not response_started:
                kind = limits.JSON_BYTES if is_json else limits.BODY_BYTES
                e = kind.error(too_large.args[0], limit)
                metrics.FAILURES.labels(e.code).inc()
                await error_response(e.status, e.code, e.detail, path=scope["path"])(
                    scope, receive, send_with_id
                )
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
            metrics.IN_FLIGHT.dec()
            self.record(scope, status, time.perf_counter() - started, request_id)

    def record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"  # bounded label values only
        protocol = "v2" if is_v2(scope["path"]) else "rest"
        labels = (template, scope["method"], str(status), protocol)
        metrics.REQUESTS.labels(*labels).inc()
        metrics.REQUEST_DURATION.labels(*labels).observe(seconds)
        if self.access_log is not None:
            client = (scope.get("client") or ("", 0))[0]
            self.access_log.write(
                request_id, scope["method"], scope["path"], template, status, seconds, client
            )
