"""Latents in: decode z, sample from the prior, interpolate between two points."""

import torch
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

from app import limits
from app.dependencies import Model, require
from app.errors import APIError, describe_errors
from app.imaging import channels_last
from app.media import (
    decode_images,
    decoded_response,
    image_form,
    image_response,
    parsed_as_json,
    read_uploads,
    wants_json,
)
from app.queries import DecodeParams, InterpolateParams, SampleParams
from app.routes import DirectRoute
from app.sampling import seeded
from app.schemas import (
    SEED_HEADER,
    DecodeRequest,
    ImagesResponse,
    InterpolateDigitsRequest,
    InterpolateRequest,
    errors,
    image_answers,
)

router = APIRouter(tags=["images out"], route_class=DirectRoute)
INTERPOLATE_BODY = TypeAdapter(InterpolateRequest | InterpolateDigitsRequest)


def class_index(model: Model, name: str | None, index: int | None) -> int | None:
    """The class a request asks for (by name or index), None for none, checked against the
    model's classes: 501 without conditional sampling, 422 for a class it does not have."""
    if name is None and index is None:
        return None
    require(model, "conditional_sampling")
    try:
        return model.contract.class_index(name, index)
    except ValueError as e:
        raise APIError(422, "invalid_parameters", str(e)) from None


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
)
async def decode(
    body: DecodeRequest, request: Request, model: Model, query: DecodeParams
) -> Response:
    """Decode latent vectors to images (Bernoulli means, or binary draws with
    pixels=bernoulli). One vector gives one PNG of the model's H x W, several a grid."""
    rows = body.z if body.z and isinstance(body.z[0], list) else [body.z]
    limits.VECTORS.check(len(rows), model.settings)
    limits.check_output(len(rows), query.scale, model)
    z = latent_tensor(rows, model.latent_dim)
    generator, seed = seeded(query.seed) if query.pixels == "bernoulli" else (None, None)
    as_json = wants_json(request, query.format)
    return await decoded_response(
        request, model, "decode", z, as_json, query.scale, generator, seed=seed
    )


@router.get(
    "/sample",
    response_class=Response,
    responses=image_answers(ImagesResponse, SEED_HEADER) | errors(401, 413, 422, 501, 503),
)
async def sample(request: Request, model: Model, query: SampleParams) -> Response:
    """Draw n images from the prior, z ~ N(0, temperature^2 I), or with `digit` from that
    digit's density in latent space, decoded (means, or binary draws with
    pixels=bernoulli). The seed used is returned (X-Seed header, or `seed` in JSON) so any
    result can be reproduced."""
    label = class_index(model, query.class_, query.digit)
    limits.VECTORS.check(query.n, model.settings)
    limits.check_output(query.n, query.scale, model)
    generator, seed = seeded(query.seed)
    if label is None:
        z = torch.randn(query.n, model.latent_dim, generator=generator) * query.temperature
    else:
        digits = torch.full((query.n,), label, dtype=torch.long)
        candidates = (query.n, model.contract.class_candidates)  # the model keeps one of each
        eps = torch.randn(*candidates, model.latent_dim, generator=generator)
        u = torch.rand(candidates, generator=generator)  # picks a mixture component
        z = (await model.run("class_latents", eps, digits, u, query.temperature))[0]
    draw = generator if query.pixels == "bernoulli" else None
    as_json = wants_json(request, query.format)
    return await decoded_response(
        request, model, "decode", z, as_json, query.scale, draw, z=z, seed=seed
    )


@router.post(
    "/interpolate",
    response_class=Response,
    responses=image_answers(ImagesResponse) | errors(400, 401, 413, 415, 422, 501, 503),
    openapi_extra={
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
async def interpolate(request: Request, model: Model, query: InterpolateParams) -> Response:
    """Decode the straight line between two latent points (PNG: one strip): two z vectors
    or two classes (JSON), or the means of q(z|x) of two uploaded images (multipart, field
    `file` twice; JSON then also returns `inputs`, the two images the encoder saw)."""
    steps = query.steps
    limits.STEPS.check(steps, model.settings)
    limits.check_output(steps, query.scale, model)
    start, end, inputs = await interpolation_ends(request, model)
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    z = (1 - t) * start + t * end  # (steps, D)
    images = (await model.run("decode", z))[0]
    as_json = wants_json(request, query.format)
    uploaded = {} if inputs is None else {"inputs": channels_last(inputs.numpy())}  # encoder input
    return await image_response(
        request, images, as_json, query.scale, columns=steps, z=z, **uploaded
    )


async def interpolation_ends(
    request: Request, model: Model
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Both ends, and the two model inputs when the ends came as images."""
    if parsed_as_json(request.headers.get("content-type", "").encode("latin-1")):
        try:
            body = INTERPOLATE_BODY.validate_json(await request.body())
        except ValidationError as e:
            raise APIError(422, "invalid_parameters", describe_errors(e.errors())) from None
        if isinstance(body, InterpolateDigitsRequest):
            ends = [class_index(model, None, d) for d in (body.digit_start, body.digit_end)]
            digits = torch.tensor(ends)
            median = torch.full((2, 1), 0.5)  # the component at the median of the weights
            eps = torch.zeros(2, 1, model.latent_dim)  # one candidate: its mean
            ends = (await model.run("class_latents", eps, digits, median, 0.0))[0]
        else:
            ends = latent_tensor([body.z_start, body.z_end], model.latent_dim)
        return ends[0], ends[1], None
    blobs = await read_uploads(request, model.settings)
    if len(blobs) != 2:
        raise APIError(422, "invalid_parameters", f"send exactly two images, not {len(blobs)}")
    x = await decode_images(request, blobs, model)
    mu = (await model.run("encode", x))[0]
    return mu[0], mu[1], x
