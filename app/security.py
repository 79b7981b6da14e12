"""Optional API key: X-API-Key: <key> or Authorization: Bearer <key>, compared in constant time."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import APIError


async def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if given is None or not secrets.compare_digest(given.encode(), expected.encode()):
        raise APIError(
            401, "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
        )


APIKey = Depends(require_api_key)
