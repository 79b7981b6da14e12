"""Optional API key: X-API-Key: <key> or Authorization: Bearer <key>, compared in constant time.

FastAPI's security classes read the two headers and declare both schemes in the OpenAPI
schema of every route that depends on them (app/openapi.py drops them when no key is set).
With auto_error=False they answer None for a missing header, so the key stays optional and
the 401 keeps this service's error shape.
"""

import hmac
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.errors import APIError

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="APIKeyHeader", description="the API key", auto_error=False
)
BEARER = HTTPBearer(scheme_name="BearerToken", description="the API key", auto_error=False)

HeaderKey = Annotated[str | None, Security(API_KEY_HEADER)]  # None when absent or empty
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]  # None unless Bearer


def check_api_key(
    expected: str | None, header: str | None, bearer: HTTPAuthorizationCredentials | None
) -> None:
    """401 unless `expected` is None (no key set) or X-API-Key, else the Bearer token, is it."""
    if expected is None:
        return
    given = header if header is not None else bearer.credentials if bearer else None
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise APIError(
            401, "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
        )


async def require_api_key(request: Request, header: HeaderKey, bearer: BearerKey) -> None:
    """The dependency of routes that need the key (the /v2 router's; `ready_model` checks it
    itself, to stay one dependency)."""
    check_api_key(request.app.state.settings.api_key, header, bearer)
