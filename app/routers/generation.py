"""Latents in: decode z, sample from the prior, interpolate between two points."""

import torch
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

from app.dependencies import Model, require
from app.errors import APIError, describe_errors
from app.media import image_form, image_response, read_images, wants_json
from app.queries import (
    DecodeQuery,
    InterpolateQuery,
    SampleQuery,
    as_openapi,
    parse_query,
)
from app.sampling import bernoulli_pixels, seeded
from app.schemas import (
    ERROR_RESPONSES,
    NOT_SUPPORTED,
    DecodeRequest,
    InterpolateDigitsRequest,
    InterpolateRequest,
)

router = APIRouter(tags=["images out"], responses=ERROR_RESPONSES)
IMAGE_CONTENT = {200: {"content": {"image/png": {}, "application/json": {}}}}
INTERPOLATE_BODY = TypeAdapter(InterpolateRequest | InterpolateDigitsRequest)


def latent_tensor(rows: list[list[float]], latent_dim: int, max_rows: int) -> torch.Tensor:
    """Validated (N, D) float32 tensor: every row of length D, finite, at most max_rows."""
    if not rows:
        raise APIError(422, "invalid_parameters", "z holds no vector")
    if len(rows) > max_rows:
        raise APIError(413, "too_many_vectors", f"at most {max_rows} vectors per request")
    if any(len(row) != latent_dim for row in rows):
        raise APIError(422, "invalid_parameters", f"every z must have {latent_dim} values")
    z = torch.tensor(rows, dtype=torch.float32)
    if not torch.isfinite(z).all():  # float32 overflow of huge finite values
        raise APIError(422, "invalid_parameters", "z values must be finite float32 numbers")
    return z


@router.post(
    "/decode",
    response_class=Response,
    responses=IMAGE_CONTENT,
    openapi_extra=as_openapi(DecodeQuery),
)
async def decode(body: DecodeRequest, request: Request, model: Model) -> Response:
    """Decode latent vectors to images (Bernoulli means, or binary draws with
    pixels=bernoulli). One vector gives one 28x28 PNG, several give a grid."""
    query = parse_query(request, DecodeQuery)
    rows = body.z if body.z and isinstance(body.z[0], list) else [body.z]
    z = latent_tensor(rows, model.latent_dim, model.settings.max_samples)
    images = await model.decode(z)
    seed = None
    if query.pixels == "bernoulli":
        generator, seed = seeded(query.seed)
        images = bernoulli_pixels(images, generator)
    return image_response(images, wants_json(request, query.format), query.scale, seed=seed)


@router.get(
    "/sample",
    response_class=Response,
    responses={**IMAGE_CONTENT, **NOT_SUPPORTED},
    openapi_extra=as_openapi(SampleQuery),
)
async def sample(request: Request, model: Model) -> Response:
    """Draw n images from the prior, z ~ N(0, temperature^2 I), or with `digit` from that
    digit's density in latent space, decoded (means, or binary draws with
    pixels=bernoulli). The seed used is returned (X-Seed header, or `seed` in JSON) so any
    result can be reproduced."""
    query = parse_query(request, SampleQuery)
    if query.n > model.settings.max_samples:
        raise APIError(422, "invalid_parameters", f"n must be at most {model.settings.max_samples}")
    if query.digit is not None:
        require(model, "conditional_sampling")
    generator, seed = seeded(query.seed)
    eps = torch.randn(query.n, model.latent_dim, generator=generator)
    if query.digit is None:
        z = eps * query.temperature
    else:
        digits = torch.full((query.n,), query.digit, dtype=torch.long)
        u = torch.rand(query.n, generator=generator)  # picks a mixture component
        z = await model.digit_latents(digits, eps, u, query.temperature)
    images = await model.decode(z)
    if query.pixels == "bernoulli":
        images = bernoulli_pixels(images, generator)
    as_json = wants_json(request, query.format)
    return image_response(images, as_json, query.scale, z=z, seed=seed)


@router.post(
    "/interpolate",
    response_class=Response,
    responses={**IMAGE_CONTENT, **NOT_SUPPORTED},
    openapi_extra={
        **as_openapi(InterpolateQuery),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            InterpolateRequest.model_json_schema(),
                            InterpolateDigitsRequest.model_json_schema(),
                        ]
                    }
                },
                "multipart/form-data": {
                    "schema": image_form("exactly two images: start and end", 2, 2)
                },
            },
        },
    },
)
async def interpolate(request: Request, model: Model) -> Response:
    """Decode the straight line between two latent points (PNG: one strip): two z vectors
    or two digits (JSON), or the means of q(z|x) of two uploaded images (multipart, field
    `file` twice)."""
    query = parse_query(request, InterpolateQuery)
    start, end, steps = await interpolation_ends(request, model, query.steps)
    if steps > (most := model.settings.max_interpolation_steps):
        raise APIError(422, "invalid_parameters", f"steps must be at most {most}")
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    z = (1 - t) * start + t * end  # (steps, D)
    images = await model.decode(z)
    as_json = wants_json(request, query.format)
    return image_response(images, as_json, query.scale, columns=steps, z=z)


async def interpolation_ends(
    request: Request, model: Model, steps: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = INTERPOLATE_BODY.validate_json(await request.body())
        except ValidationError as e:
            raise APIError(422, "invalid_parameters", describe_errors(e.errors())) from None
        if isinstance(body, InterpolateDigitsRequest):
            require(model, "conditional_sampling")
            digits = torch.tensor([body.digit_start, body.digit_end])
            median = torch.full((2,), 0.5)  # the component at the median of the weights
            ends = await model.digit_latents(digits, torch.zeros(2, model.latent_dim), median, 0.0)
        else:
            ends = latent_tensor([body.z_start, body.z_end], model.latent_dim, 2)
        return ends[0], ends[1], steps or body.steps
    x = await read_images(request, model.settings)
    if len(x) != 2:
        raise APIError(422, "invalid_parameters", f"send exactly two images, not {len(x)}")
    mu = (await model.encode(x))[0]
    return mu[0], mu[1], steps or 8
