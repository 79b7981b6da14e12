"""Images in: encode to q(z|x), and reconstruct."""

import orjson
from fastapi import APIRouter, Request, Response

from app import limits
from app.dependencies import Model
from app.media import (
    IMAGE_BODY,
    decode_images,
    image_response,
    read_images,
    read_uploads,
    wants_json,
)
from app.queries import ImageParams
from app.schemas import ERROR_RESPONSES, EncodeResponse

NUMPY = orjson.OPT_SERIALIZE_NUMPY
router = APIRouter(tags=["images in"], responses=ERROR_RESPONSES)


@router.post(
    "/encode",
    response_model=EncodeResponse | list[EncodeResponse],
    openapi_extra=IMAGE_BODY,
)
async def encode(request: Request, model: Model) -> Response:
    """Encode one image (or several, as a batch) to the mean and standard deviation of q(z|x).

    Images are made MNIST-like first: greyscale, light backgrounds inverted, the digit fitted
    into 20x20 and centred in 28x28. A 28x28 image is used as it is.
    """
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
    # Serialised straight from numpy (the hot path); the shape is EncodeResponse's.
    body = results[0] if len(results) == 1 else results
    return Response(orjson.dumps(body, option=NUMPY), media_type="application/json")


@router.post(
    "/reconstruct",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/json": {}}}},
    openapi_extra=IMAGE_BODY,
)
async def reconstruct(request: Request, model: Model, query: ImageParams) -> Response:
    """Reconstruct images through the VAE: decode the mean of q(z|x).

    PNG by default (a grid for several images); JSON with `format=json` also returns the
    preprocessed input that the encoder saw.
    """
    blobs = await read_uploads(request, model.settings)
    limits.check_output(len(blobs), query.scale, model.settings)
    x = await decode_images(request, blobs, model.settings)
    images = await model.reconstruct(x)
    if wants_json(request, query.format):
        return await image_response(request, images, True, query.scale, inputs=x[:, 0])
    return await image_response(request, images, False, query.scale)
