"""Request-scoped access to the ready model.

One dependency, without sub-dependencies, and endpoints read the settings from the model:
resolving dependencies is a measurable share of a request (docs/benchmarks.md, profiling).
The API key, when one is set, is checked before it by a dependency app.main adds to the
keyed routers (app/security.py). It also starts the request's deadline (app.deadlines) from
its header, read by hand: a FastAPI Header parameter cost 6 % of /sample?n=1 throughput
(scripts/bench/side_by_side.sh); app.openapi documents it. It is `async def`: a plain
`def` would cost a threadpool round trip each time.
"""

from typing import Annotated

from fastapi import Depends, Request

from app import deadlines
from app.errors import APIError
from app.inference import ModelService


async def ready_model(request: Request) -> ModelService:
    state = request.app.state
    if not state.ready or state.model is None:
        raise APIError(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
    budget_ms = deadlines.header_budget_ms(request.headers.get(deadlines.HEADER))
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
