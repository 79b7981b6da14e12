"""Optional API key: X-API-Key: <key> or Authorization: Bearer <key>, compared in constant time.

The headers are read straight from the request rather than declared as FastAPI Header
parameters: this runs on every request, and pydantic validation of two headers cost more
than the rest of the check (see docs/benchmarks.md, profiling).
"""

import secrets

from fastapi import Request

from app.errors import APIError


def check_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    given = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization", "")
    if given is None and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None or not secrets.compare_digest(given.encode(), expected.encode()):
        raise APIError(
            401, "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
        )
