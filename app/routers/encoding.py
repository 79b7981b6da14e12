"""Images in: encode to q(z|x), and reconstruct."""

import orjson
from fastapi import APIRouter, Request, Response

from app.dependencies import Model
from app.media import (
    IMAGE_BODY,
    InputQuery,
    image_response,
    include_input,
    read_images,
    wants_json,
    with_inputs,
)
from app.queries import ImageQuery, as_openapi, parse_query
from app.schemas import ERROR_RESPONSES, EncodeResponse

NUMPY = orjson.OPT_SERIALIZE_NUMPY
router = APIRouter(tags=["images in"], responses=ERROR_RESPONSES)


@router.post(
    "/encode",
    response_model=EncodeResponse | list[EncodeResponse],
    openapi_extra={**IMAGE_BODY, **as_openapi(InputQuery)},
)
async def encode(request: Request, model: Model) -> Response:
    """Encode one image (or several, as a batch) to the mean and standard deviation of q(z|x).

    Images are made MNIST-like first (photos too: docs/preprocessing.md): the digit found,
    white on black, fitted into 20x20 and centred in 28x28; a 28x28 image is used as it is
    (inverted if its digit is dark). An image without a digit gets 422 `no_digit`.
    `include_input=true` adds `input`, the 28x28 image the encoder saw.
    """
    include = include_input(request)
    x = await read_images(request, model.settings)
    mu, sigma, *kl = await model.encode(x)
    results = [
        {
            "mu": mu[i].numpy(),
            "sigma": sigma[i].numpy(),
            "latent_dim": model.latent_dim,
            "kl": kl[0][i].item() if kl else None,
        }
        for i in range(len(x))
    ]
    results = with_inputs(results, x, include)
    # Serialised straight from numpy (the hot path); the shape is EncodeResponse's.
    body = results[0] if len(results) == 1 else results
    return Response(orjson.dumps(body, option=NUMPY), media_type="application/json")


@router.post(
    "/reconstruct",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/json": {}}}},
    openapi_extra={**IMAGE_BODY, **as_openapi(ImageQuery)},
)
async def reconstruct(request: Request, model: Model) -> Response:
    """Reconstruct images through the VAE: decode the mean of q(z|x).

    PNG by default (a grid for several images); JSON with `format=json` also returns the
    preprocessed input that the encoder saw.
    """
    query = parse_query(request, ImageQuery)
    x = await read_images(request, model.settings)
    images = await model.reconstruct(x)
    if wants_json(request, query.format):
        return image_response(images, True, query.scale, inputs=x[:, 0])
    return image_response(images, False, query.scale)
