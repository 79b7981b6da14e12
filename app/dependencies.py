"""Request-scoped access to the ready model, for callers that hold the API key if one is set.

One dependency does both checks, and endpoints read the settings from the model: resolving
dependencies is a measurable share of a request (docs/benchmarks.md, profiling). Its only
sub-dependencies are the two API-key headers (app/security.py), through which FastAPI
declares the security schemes, and the deadline header (app.deadlines), which it documents
and validates (a value that is not a whole number of ms: 422). It is `async def`: a plain
`def` would cost a threadpool round trip each time.
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from app import deadlines
from app.errors import APIError
from app.inference import ModelService
from app.security import BearerKey, HeaderKey, check_api_key

DeadlineHeader = Annotated[
    int | None,
    Header(
        alias=deadlines.HEADER,
        ge=0,
        le=deadlines.MAX_BUDGET,
        description="the request's time budget in milliseconds, from its arrival (Envoy "
        "sets it from its route timeout): past it, waiting for the model ends in 504 "
        "deadline_exceeded, without model work; 0 or absent: VAE_REQUEST_TIMEOUT_S",
    ),
]


async def ready_model(
    request: Request, header: HeaderKey, bearer: BearerKey, budget_ms: DeadlineHeader = None
) -> ModelService:
    state = request.app.state
    check_api_key(state.settings.api_key, header, bearer)  # 401 before 503: nothing without it
    if not state.ready or state.model is None:
        raise APIError(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
    deadlines.start(request, budget_ms / 1000 if budget_ms else state.settings.request_timeout_s)
    return state.model


Model = Annotated[ModelService, Depends(ready_model)]


def require(model: ModelService, capability: str) -> None:
    """501 not_supported unless the loaded model file offers `capability` (GET /model)."""
    if capability not in model.capabilities:
        raise APIError(
            501,
            "not_supported",
            f"the loaded model ({model.version}) has no {capability!r} capability; "
            "re-export it with vae-export (see GET /model: capabilities)",
        )
