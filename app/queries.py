"""Query-string parameters: pydantic models that the routes parse themselves.

Declared as FastAPI parameters they cost ~9 us each per request (five on /sample: ~45 us,
a fifth of a /sample?n=1 request; docs/benchmarks.md); validating the same fields as one
model costs a few. The OpenAPI schema lists them from the same models (`as_openapi`).
"""

from typing import Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

from app.errors import APIError, describe_errors

OutputFormat = Literal["png", "json"]
MAX_SEED = 2**63 - 1
QueryModel = TypeVar("QueryModel", bound=BaseModel)


class ImageQuery(BaseModel):
    """How images are returned (every route that answers with images)."""

    format: OutputFormat | None = Field(
        None, description="png (default; JSON if Accept asks for it) or json"
    )
    scale: int = Field(1, ge=1, le=16, description="PNG upscaling factor")


class SampleQuery(ImageQuery):
    n: int = Field(16, ge=1, description="number of images (<= VAE_MAX_SAMPLES)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same images")
    temperature: float = Field(
        1.0, ge=0, le=10, allow_inf_nan=False, description="z ~ N(0, temperature^2 I)"
    )


class InterpolateQuery(ImageQuery):
    steps: int | None = Field(None, ge=2, description="points (uploads; default 8)")


def parse_query(request: Request, model: type[QueryModel]) -> QueryModel:
    """The query string as `model` (unknown names are ignored), or a 422 naming the field."""
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
