"""One error shape for every failure: {"error": code, "detail": message}, never a stack trace."""

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


def error_response(status: int, code: str, detail: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def overloaded(detail: str) -> APIError:
    return APIError(503, "overloaded", detail, {"Retry-After": "1"})


FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
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


def describe_errors(errors: Sequence[Mapping], prefix: str = "") -> str:
    """'query.n: Input should be less than or equal to 256; ...' without echoing huge inputs."""
    parts = []
    for error in errors[:5]:
        loc = error.get("loc", ())
        where = ".".join(str(p) for p in ((prefix, *loc) if prefix else loc))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        metrics.FAILURES.labels(exc.code).inc()
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.FAILURES.labels("invalid_parameters").inc()
        return error_response(422, "invalid_parameters", describe_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
            # FastAPI answers 422 for malformed JSON but 400 when the parser itself gives up
            # (e.g. RecursionError on deeply nested arrays): the same client error, one status.
            metrics.FAILURES.labels("invalid_parameters").inc()
            return error_response(422, "invalid_parameters", "the JSON body cannot be parsed")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        metrics.FAILURES.labels(code).inc()
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, detail, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error on %s %s: %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc,
            extra={"request_id": getattr(request.state, "request_id", None)},
        )
        metrics.FAILURES.labels("internal_error").inc()
        return error_response(500, "internal_error", "the server failed to handle this request")
