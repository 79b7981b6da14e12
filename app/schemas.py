"""Request and response bodies (pydantic); their docstrings and examples feed the OpenAPI page."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EncodeResponse(BaseModel):
    """The Gaussian q(z|x) of one image."""

    mu: list[float] = Field(description="mean of q(z|x), D values")
    sigma: list[float] = Field(description="standard deviation of q(z|x), D values > 0")
    latent_dim: int = Field(description="D")
    kl: float | None = Field(None, description="KL(q(z|x) || N(0, I)) in nats")


class DecodeRequest(StrictModel):
    """Latent vectors to decode: one vector or a list of vectors of length D."""

    z: list[list[float]] | list[float] = Field(
        description="(N, D) or (D,); the example has the served model's D (app.openapi)"
    )


class InterpolateRequest(StrictModel):
    """The two ends of the line to decode (the number of points is the query's `steps`)."""

    z_start: list[float] = Field(description="D floats")
    z_end: list[float] = Field(description="D floats")


class ImagesResponse(BaseModel):
    """Images as base64 PNGs and as pixel arrays (probabilities of a white pixel)."""

    count: int
    images: list[str] = Field(description="base64-encoded 28x28 greyscale PNGs")
    pixels: list[list[list[float]]] = Field(description="(N, 28, 28) values in [0, 1]")
    z: list[list[float]] | None = Field(None, description="the latent vectors decoded")
    seed: int | None = Field(None, description="seed that reproduces these samples")


class ModelResponse(BaseModel):
    """The model card and how it is being served."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    latent_dim: int
    device: str
    precision: str
    batching: bool
    card: dict


class ErrorResponse(BaseModel):
    error: str = Field(description="stable machine-readable code", examples=["invalid_image"])
    detail: str = Field(description="what went wrong, for people")


class HealthResponse(BaseModel):
    status: Literal["ok", "ready", "not_ready", "draining"]


class ReconstructResponse(ImagesResponse):
    """Reconstructions, with the preprocessed inputs the encoder saw."""

    inputs: list[list[list[float]]] = Field(description="(N, 28, 28) model inputs in [0, 1]")


ERROR_MEANINGS = {
    400: "undecodable or corrupt image, or an unparsable multipart body",
    401: "API key missing or wrong",
    413: "over one of the server's limits (VAE_MAX_*): send less",
    415: "unsupported media type",
    422: "invalid or unknown parameters",
    503: "overloaded or not ready (see Retry-After)",
}


def errors(*statuses: int) -> dict:
    """The error responses a route can give, each described once (docs/errors.md has codes)."""
    return {s: {"model": ErrorResponse, "description": ERROR_MEANINGS[s]} for s in statuses}


PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
SEED_HEADER = {
    "X-Seed": {
        "description": "the seed that reproduces these samples (PNG answers; JSON has `seed`)",
        "schema": {"type": "string"},
    }
}


def image_answers(model: type[BaseModel], headers: dict | None = None) -> dict:
    """200: a PNG (one image or a grid) or, with format=json, `model` as JSON."""
    ok = {"model": model, "content": PNG, "description": "PNG, or JSON with format=json"}
    return {200: ok | ({"headers": headers} if headers else {})}


ERROR_RESPONSES = errors(400, 401, 413, 415, 422, 503)  # routes that take image uploads
