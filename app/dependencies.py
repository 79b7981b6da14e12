"""Request-scoped access to what the lifespan built: settings and the ready model.

All dependencies are `async def`: a plain `def` would cost a threadpool round trip each.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.errors import APIError
from app.inference import ModelService
from app.settings import Settings


async def get_settings_from_app(request: Request) -> Settings:
    return request.app.state.settings


async def get_model(request: Request) -> ModelService:
    state = request.app.state
    if not state.ready or state.model is None:
        raise APIError(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
    return state.model


AppSettings = Annotated[Settings, Depends(get_settings_from_app)]
Model = Annotated[ModelService, Depends(get_model)]
