"""Query-string parameters as pydantic models: routes take `query: SampleParams` and get a
validated SampleQuery; OpenAPI lists the parameters from the same models (app.openapi).

A name the route does not take (`/sample?temprature=0.5`) is a 422 naming it
(`extra="forbid"`), never silently ignored.

Not FastAPI's own query-parameter models (`Annotated[SampleQuery, Query()]`): they
introspect every field of the model on every request, which cost more than the 5 % of a
request this project allows for plumbing, and this dependency less (measured 2026-12-01:
docs/CHANGELOG.md, "review pass").
"""

from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from app.errors import APIError, describe_errors

OutputFormat = Literal["png", "json"]
PixelMode = Literal["mean", "bernoulli"]
MAX_SEED = 2**63 - 1


def integer_text(value: object) -> object:
    """Refuse '3.0' for an integer parameter: pydantic's lax mode would read it as 3, which
    the OpenAPI schema (type integer) calls invalid."""
    if isinstance(value, str) and "." in value:
        raise ValueError("must be an integer, without a decimal point")
    return value


QueryInt = Annotated[int, BeforeValidator(integer_text)]


class ImageQuery(BaseModel):
    """How images are returned (every route that answers with images)."""

    model_config = ConfigDict(extra="forbid")

    format: OutputFormat | None = Field(
        None, description="png (default; JSON if Accept asks for it) or json"
    )
    scale: QueryInt = Field(1, ge=1, le=16, description="PNG upscaling factor")


class DecodeQuery(ImageQuery):
    """Decoded images: Bernoulli means, or binary images drawn from them."""

    pixels: PixelMode = Field(
        "mean",
        description="mean: pixel probabilities of p(x|z); bernoulli: a binary image drawn "
        "from p(x|z), reproducible with `seed`",
    )
    seed: QueryInt | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same draws")


class SampleQuery(DecodeQuery):
    n: QueryInt = Field(16, ge=1, description="number of images (at most VAE_MAX_SAMPLES)")
    temperature: float = Field(
        1.0,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="z ~ N(0, temperature^2 I); with a class, scales the spread of that "
        "class's latent density",
    )
    class_: str | None = Field(
        None,
        alias="class",
        description="draw z from this class's density in latent space (a Gaussian mixture "
        "fitted on mu of the training images) instead of the prior: one of the model's class "
        "names (GET /model: contract.classes); models with the conditional_sampling capability",
    )
    digit: QueryInt | None = Field(
        None,
        ge=0,
        description="the same by the class's index (0 is the first name; for MNIST, the "
        "digit itself)",
    )


class ReconstructQuery(DecodeQuery):
    draw: Literal["mean", "z"] = Field(
        "mean",
        description="mean: decode the mean of q(z|x); z: decode one draw z ~ q(z|x), "
        "reproducible with `seed`",
    )


class InterpolateQuery(ImageQuery):
    steps: QueryInt = Field(
        8,
        ge=2,
        description="points on the line, both ends included (at most VAE_MAX_INTERPOLATION_STEPS)",
    )


class InputQuery(BaseModel):
    """Image routes with JSON results (/encode, /score, /classify): app.media.with_inputs."""

    model_config = ConfigDict(extra="forbid")

    include_input: bool = Field(
        False, description="add `input` to each result: the preprocessed image the encoder saw"
    )


class ScoreQuery(InputQuery):
    k: QueryInt = Field(
        100, ge=1, description="importance samples for log_likelihood (at most VAE_MAX_SCORE_K)"
    )


Q = TypeVar("Q", bound=BaseModel)


class QueryParser(Generic[Q]):
    """A dependency: the query string as `model`, or a 422 naming each bad or unknown name.
    `async`: a plain function would cost a threadpool round trip per request."""

    def __init__(self, model: type[Q]) -> None:
        self.model = model

    async def __call__(self, request: Request) -> Q:
        try:
            return self.model.model_validate(request.query_params)
        except ValidationError as e:
            detail = describe_errors(e.errors(), "query")
            raise APIError(422, "invalid_parameters", detail) from None


def params(model: type[Q]):
    return Annotated[model, Depends(QueryParser(model))]


InputParams = params(InputQuery)
DecodeParams = params(DecodeQuery)
SampleParams = params(SampleQuery)
ReconstructParams = params(ReconstructQuery)
ScoreParams = params(ScoreQuery)
InterpolateParams = params(InterpolateQuery)
