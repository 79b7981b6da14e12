"""Request-scoped access to the ready model, for callers that hold the API key if one is set.

One dependency does both checks, and endpoints read the settings from the model: FastAPI
resolves each dependency at ~8 us per request, and three of them took ~11 % of an encode
request (docs/benchmarks.md). It is `async def`: a plain `def` would cost a threadpool
round trip each time.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.errors import APIError
from app.inference import ModelService
from app.security import check_api_key


async def ready_model(request: Request) -> ModelService:
    check_api_key(request)  # 401 before 503: without the key, nothing about the service
    state = request.app.state
    if not state.ready or state.model is None:
        raise APIError(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
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
