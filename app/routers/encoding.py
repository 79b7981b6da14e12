"""Images in: encode to q(z|x), and reconstruct."""

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
from app.queries import ImageQuery, as_openapi, parse_query
from app.schemas import ERROR_RESPONSES, EncodeResponse, ReconstructResponse, image_answers

router = APIRouter(tags=["images in"], responses=ERROR_RESPONSES)


@router.post(
    "/encode",
    response_model=EncodeResponse | list[EncodeResponse],
    openapi_extra=IMAGE_BODY,
)
async def encode(request: Request, model: Model) -> dict | list[dict]:
    """Encode one image (or several, as a batch) to the mean and standard deviation of q(z|x).

    Images are made MNIST-like first: greyscale, light backgrounds inverted, the digit fitted
    into 20x20 and centred in 28x28. A 28x28 image is used as it is.
    """
    x = await read_images(request, model.settings)
    mu, sigma, *kl = await model.encode(x)
    # Validated and serialised by FastAPI from the response model: +21 us per request against
    # orjson straight from numpy (92.7 vs 71.2 us for the route alone, min of 40 alternating
    # rounds on a busy machine), ~3.5 % of a whole encode request there, within the 5 %.
    kls = kl[0].tolist() if kl else [None] * len(x)
    results = [
        {"mu": m, "sigma": s, "latent_dim": model.latent_dim, "kl": k}
        for m, s, k in zip(mu.tolist(), sigma.tolist(), kls, strict=True)
    ]
    return results[0] if len(results) == 1 else results


@router.post(
    "/reconstruct",
    response_class=Response,
    responses=image_answers(ReconstructResponse),
    openapi_extra={**IMAGE_BODY, **as_openapi(ImageQuery)},
)
async def reconstruct(request: Request, model: Model) -> Response:
    """Reconstruct images through the VAE: decode the mean of q(z|x).

    PNG by default (a grid for several images); JSON with `format=json` also returns the
    preprocessed input that the encoder saw.
    """
    query = parse_query(request, ImageQuery)
    blobs = await read_uploads(request, model.settings)
    limits.check_output(len(blobs), query.scale, model.settings)
    x = await decode_images(request, blobs, model.settings)
    images = await model.reconstruct(x)
    if wants_json(request, query.format):
        return await image_response(request, images, True, query.scale, inputs=x[:, 0])
    return await image_response(request, images, False, query.scale)
