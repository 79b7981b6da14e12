"""Optional API key: X-API-Key: <key> or Authorization: Bearer <key>, compared in constant time.

FastAPI's security classes read the two headers and declare both schemes in the OpenAPI
schema of every route that depends on them. With auto_error=False they answer None for a
missing header, so the 401 keeps this service's error shape.

`require_api_key` is added by app.main to the keyed routers only when VAE_API_KEY is set:
resolving its two header dependencies on every request cost 8 % of /sample?n=1 throughput
(side by side, docs/CHANGELOG.md 2026-12-06), which an open service has no reason to pay.
Router dependencies run before the endpoint's, so the 401 comes before a 503.
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
    """The dependency of the routers that need the key, when one is set."""
    check_api_key(request.app.state.settings.api_key, header, bearer)
