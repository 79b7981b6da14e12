"""One error shape for every failure: {"error": code, "detail": message}, never a stack trace.

Under /v2 the Open Inference Protocol fixes the shape to {"error": message}: its clients
(tritonclient, KServe's) read that field and show it; the code still labels the metrics.
"""

import logging
from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics

log = logging.getLogger("app.errors")


class APIError(Exception):
    """An error the client can act on, with its HTTP status and a stable code."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def error_response(status: int, code: str, detail: str, headers=None, path="") -> JSONResponse:
    body = {"error": detail} if is_v2(path) else {"error": code, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def overloaded(detail: str) -> APIError:
    return APIError(503, "overloaded", detail, {"Retry-After": "1"})


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameters",
    503: "unavailable",
}


def is_body_parse_error(exc: StarletteHTTPException) -> bool:
    """FastAPI's 400 when the JSON parser itself gives up (RecursionError on deeply nested
    arrays, UnicodeDecodeError on bytes that are not UTF-8): it raises it from that error."""
    return exc.status_code == 400 and isinstance(exc.__cause__, (RecursionError, ValueError))


def describe_errors(errors: Sequence[Mapping], prefix: str = "") -> str:
    """'query.n: Input should be less than or equal to 256; ...' without echoing huge inputs."""
    parts = []
    for error in errors[:5]:
        loc = error.get("loc", ())
        where = ".".join(str(p) for p in ((prefix, *loc) if prefix else loc))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """The client errors' handlers. An unexpected exception has one path: it propagates to
    app.middleware, which logs it with the request id and answers the JSON 500."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        metrics.FAILURES.labels(exc.code).inc()
        return error_response(exc.status, exc.code, exc.detail, exc.headers, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.FAILURES.labels("invalid_parameters").inc()
        detail = describe_errors(exc.errors())
        return error_response(422, "invalid_parameters", detail, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if is_body_parse_error(exc):
            # FastAPI answers 422 for malformed JSON but 400 when the parser itself gives up:
            # the same client error, one status.
            metrics.FAILURES.labels("invalid_parameters").inc()
            detail = "the JSON body cannot be parsed"
            return error_response(422, "invalid_parameters", detail, path=request.url.path)
        code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code, "http_error")
        metrics.FAILURES.labels(code).inc()
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, detail, exc.headers, request.url.path)
