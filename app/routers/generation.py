"""Latents in: decode z, sample from the prior, interpolate between two points."""

import secrets

import torch
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from app import limits
from app.dependencies import Model
from app.errors import APIError, describe_errors
from app.media import (
    decode_images,
    image_form,
    image_response,
    parsed_as_json,
    read_uploads,
    wants_json,
)
from app.queries import ImageQuery, InterpolateQuery, SampleQuery, as_openapi, parse_query
from app.schemas import (
    SEED_HEADER,
    DecodeRequest,
    ImagesResponse,
    InterpolateRequest,
    errors,
    image_answers,
)

router = APIRouter(tags=["images out"])


def latent_tensor(rows: list[list[float]], latent_dim: int) -> torch.Tensor:
    """Validated (N, D) float32 tensor: every row of length D, finite."""
    if not rows:
        raise APIError(422, "invalid_parameters", "z holds no vector")
    if any(len(row) != latent_dim for row in rows):
        raise APIError(422, "invalid_parameters", f"every z must have {latent_dim} values")
    z = torch.tensor(rows, dtype=torch.float32)
    if not torch.isfinite(z).all():  # float32 overflow of huge finite values
        raise APIError(422, "invalid_parameters", "z values must be finite float32 numbers")
    return z


@router.post(
    "/decode",
    response_class=Response,
    responses=image_answers(ImagesResponse) | errors(401, 413, 422, 503),
    openapi_extra=as_openapi(ImageQuery),
)
async def decode(body: DecodeRequest, request: Request, model: Model) -> Response:
    """Decode latent vectors to images (Bernoulli means). One vector gives one 28x28 PNG,
    several give a grid."""
    query = parse_query(request, ImageQuery)
    rows = body.z if body.z and isinstance(body.z[0], list) else [body.z]
    limits.VECTORS.check(len(rows), model.settings)
    limits.check_output(len(rows), query.scale, model.settings)
    z = latent_tensor(rows, model.latent_dim)
    images = await model.decode(z)
    return await image_response(request, images, wants_json(request, query.format), query.scale)


@router.get(
    "/sample",
    response_class=Response,
    responses=image_answers(ImagesResponse, SEED_HEADER) | errors(401, 413, 422, 503),
    openapi_extra=as_openapi(SampleQuery),
)
async def sample(request: Request, model: Model) -> Response:
    """Draw n images from the prior: z ~ N(0, temperature^2 I), decoded. The seed used is
    returned (X-Seed header, or `seed` in JSON) so any result can be reproduced."""
    query = parse_query(request, SampleQuery)
    limits.VECTORS.check(query.n, model.settings)
    limits.check_output(query.n, query.scale, model.settings)
    seed = secrets.randbits(63) if query.seed is None else query.seed
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(query.n, model.latent_dim, generator=generator) * query.temperature
    images = await model.decode(z)
    as_json = wants_json(request, query.format)
    return await image_response(request, images, as_json, query.scale, z=z, seed=seed)


@router.post(
    "/interpolate",
    response_class=Response,
    responses=image_answers(ImagesResponse) | errors(400, 401, 413, 415, 422, 503),
    openapi_extra={
        **as_openapi(InterpolateQuery),
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": InterpolateRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": image_form("exactly two images: start and end", 2, 2)
                },
            },
        },
    },
)
async def interpolate(request: Request, model: Model) -> Response:
    """Decode the straight line between two latent points (PNG: one strip): two z vectors
    (JSON) or the means of q(z|x) of two uploaded images (multipart, field `file` twice)."""
    query = parse_query(request, InterpolateQuery)
    steps = query.steps
    limits.STEPS.check(steps, model.settings)
    limits.check_output(steps, query.scale, model.settings)
    start, end = await interpolation_ends(request, model)
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    z = (1 - t) * start + t * end  # (steps, D)
    images = await model.decode(z)
    as_json = wants_json(request, query.format)
    return await image_response(request, images, as_json, query.scale, columns=steps, z=z)


async def interpolation_ends(request: Request, model: Model) -> tuple[torch.Tensor, torch.Tensor]:
    if parsed_as_json(request.headers.get("content-type", "").encode("latin-1")):
        try:
            body = InterpolateRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise APIError(422, "invalid_parameters", describe_errors(e.errors())) from None
        ends = latent_tensor([body.z_start, body.z_end], model.latent_dim)
        return ends[0], ends[1]
    blobs = await read_uploads(request, model.settings)
    if len(blobs) != 2:
        raise APIError(422, "invalid_parameters", f"send exactly two images, not {len(blobs)}")
    x = await decode_images(request, blobs, model.settings)
    mu = (await model.encode(x))[0]
    return mu[0], mu[1]
