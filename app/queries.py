"""Query-string parameters: pydantic models that the routes validate themselves.

Measured against FastAPI's own query-parameter models (`Annotated[SampleQuery, Query()]`),
which introspect every field of the model on every request: +54 us per /sample?n=1 request
(75 -> 129 us for the route alone, min of 40 alternating rounds; whole request in process
~505 -> ~558 us median, +10 %; a busy 2-core machine, docs/benchmarks.md), over the 5 % the
project allows for plumbing. So the route validates the same model in one call, and OpenAPI
lists the parameters from the same model (`as_openapi`). A name the model does not have
(`/sample?temprature=0.5`) is a 422 naming it (`extra="forbid"`), never silently ignored.
"""

from typing import Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import APIError, describe_errors

OutputFormat = Literal["png", "json"]
MAX_SEED = 2**63 - 1
QueryModel = TypeVar("QueryModel", bound=BaseModel)


class ImageQuery(BaseModel):
    """How images are returned (every route that answers with images)."""

    model_config = ConfigDict(extra="forbid")

    format: OutputFormat | None = Field(
        None, description="png (default; JSON if Accept asks for it) or json"
    )
    scale: int = Field(1, ge=1, le=16, description="PNG upscaling factor")


class SampleQuery(ImageQuery):
    n: int = Field(16, ge=1, description="number of images (at most VAE_MAX_SAMPLES)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same images")
    temperature: float = Field(
        1.0, ge=0, le=10, allow_inf_nan=False, description="z ~ N(0, temperature^2 I)"
    )


class InterpolateQuery(ImageQuery):
    steps: int = Field(
        8,
        ge=2,
        description="points on the line, both ends included (at most VAE_MAX_INTERPOLATION_STEPS)",
    )


def parse_query(request: Request, model: type[QueryModel]) -> QueryModel:
    """The query string as `model`, or a 422 naming each bad or unknown parameter."""
    try:
        return model.model_validate(request.query_params)
    except ValidationError as e:
        raise APIError(422, "invalid_parameters", describe_errors(e.errors(), "query")) from None


def as_openapi(model: type[BaseModel]) -> dict:
    """`openapi_extra` that documents the fields of `model` as optional query parameters."""
    properties = model.model_json_schema()["properties"]
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            | ({"description": schema["description"]} if "description" in schema else {})
            for name, schema in properties.items()
        ]
    }
