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
PixelMode = Literal["mean", "bernoulli"]
MAX_SEED = 2**63 - 1
QueryModel = TypeVar("QueryModel", bound=BaseModel)


class ImageQuery(BaseModel):
    """How images are returned (every route that answers with images)."""

    format: OutputFormat | None = Field(
        None, description="png (default; JSON if Accept asks for it) or json"
    )
    scale: int = Field(1, ge=1, le=16, description="PNG upscaling factor")


class DecodeQuery(ImageQuery):
    """Decoded images: Bernoulli means, or binary images drawn from them."""

    pixels: PixelMode = Field(
        "mean",
        description="mean: pixel probabilities of p(x|z); bernoulli: a binary image drawn "
        "from p(x|z), reproducible with `seed`",
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same draws")


class SampleQuery(DecodeQuery):
    n: int = Field(16, ge=1, description="number of images (<= VAE_MAX_SAMPLES)")
    temperature: float = Field(
        1.0,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="z ~ N(0, temperature^2 I); with `digit`, scales the spread of that "
        "digit's latent density",
    )
    digit: int | None = Field(
        None,
        ge=0,
        le=9,
        description="draw z from this digit's density in latent space (a Gaussian mixture "
        "fitted on mu of the training digits) instead of the prior; models with the "
        "conditional_sampling capability",
    )


class ReconstructQuery(DecodeQuery):
    draw: Literal["mean", "z"] = Field(
        "mean",
        description="mean: decode the mean of q(z|x); z: decode one draw z ~ q(z|x), "
        "reproducible with `seed`",
    )


class ScoreQuery(BaseModel):
    k: int = Field(
        100, ge=1, description="importance samples for log_likelihood (<= VAE_MAX_SCORE_K)"
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
