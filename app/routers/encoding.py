"""Images in: encode to q(z|x), and reconstruct."""

from functools import partial

import orjson
import torch
from fastapi import APIRouter, Request, Response

from app import limits
from app.dependencies import Model
from app.imaging import channels_last
from app.media import (
    IMAGE_BODY,
    decode_images,
    decoded_response,
    image_response,
    read_images,
    read_uploads,
    wants_json,
    with_inputs,
)
from app.queries import InputParams, ReconstructParams
from app.routes import DirectRoute
from app.sampling import bernoulli_pixels, posterior_draw, seeded
from app.schemas import ERROR_RESPONSES, EncodeResponse, ReconstructResponse, image_answers

NUMPY = orjson.OPT_SERIALIZE_NUMPY
router = APIRouter(tags=["images in"], responses=ERROR_RESPONSES, route_class=DirectRoute)


@router.post(
    "/encode",
    response_model=EncodeResponse | list[EncodeResponse],
    openapi_extra=IMAGE_BODY,
)
async def encode(request: Request, model: Model, query: InputParams) -> Response:
    """Encode one image (or several, as a batch) to the mean and standard deviation of q(z|x).

    Images are made the model's input first by the preprocessor its card names
    (docs/preprocessing.md): `resize` to its H x W and channels, or for the MNIST model the
    digit found (photos too), white on black, centred in 28x28, and an image without a
    digit gets 422 `no_digit`. `include_input=true` adds `input`, the image the encoder saw.
    """
    x = await read_images(request, model)
    # the JSON is made on the inference thread, right after the batch's model call
    finish = partial(encoded_body, x, model.latent_dim, query.include_input)
    return await model.run("encode", x, finish=finish)


def encoded_body(
    x: torch.Tensor, latent_dim: int, include_input: bool, outputs: tuple[torch.Tensor, ...]
) -> Response:
    """The encode outputs of images `x` as EncodeResponse JSON (a list for several)."""
    mu, sigma, *kl = outputs
    results = [
        {
            "mu": mu[i].numpy(),
            "sigma": sigma[i].numpy(),
            "latent_dim": latent_dim,
            "kl": kl[0][i].item() if kl else None,
        }
        for i in range(len(x))
    ]
    results = with_inputs(results, x, include_input)
    # Serialised straight from numpy (the hot path); the shape is EncodeResponse's.
    body = results[0] if len(results) == 1 else results
    return Response(orjson.dumps(body, option=NUMPY), media_type="application/json")


@router.post(
    "/reconstruct",
    response_class=Response,
    responses=image_answers(ReconstructResponse),
    openapi_extra=IMAGE_BODY,
)
async def reconstruct(request: Request, model: Model, query: ReconstructParams) -> Response:
    """Reconstruct images through the VAE: decode the mean of q(z|x) (or a draw z ~ q(z|x)
    with draw=z; binary pixels ~ p(x|z) with pixels=bernoulli; both seeded).

    PNG by default (a grid for several images); JSON with `format=json` also returns the
    preprocessed `inputs` that the encoder saw and `mu` and `sigma` of q(z|x).
    """
    blobs = await read_uploads(request, model.settings)
    limits.check_output(len(blobs), query.scale, model)
    x = await decode_images(request, blobs, model)
    as_json = wants_json(request, query.format)
    stochastic = query.draw == "z" or query.pixels == "bernoulli"
    generator, seed = seeded(query.seed) if stochastic else (None, None)
    draw = generator if query.pixels == "bernoulli" else None
    if query.draw == "mean" and not as_json:  # one model call
        return await decoded_response(
            request, model, "reconstruct", x, False, query.scale, draw, seed=seed
        )
    mu, sigma, *_ = await model.run("encode", x)
    z = posterior_draw(mu, sigma, generator) if query.draw == "z" else mu
    if not as_json:
        return await decoded_response(
            request, model, "decode", z, False, query.scale, draw, seed=seed
        )
    images = (await model.run("decode", z))[0]
    if draw is not None:
        images = bernoulli_pixels(images, draw)
    drawn = {"z": z} if query.draw == "z" else {}
    # mu and sigma are views of one (N, 2D) output: orjson needs contiguous arrays
    mu, sigma = mu.contiguous(), sigma.contiguous()
    return await image_response(
        request,
        images,
        True,
        query.scale,
        inputs=channels_last(x.numpy()),
        mu=mu,
        sigma=sigma,
        seed=seed,
        **drawn,
    )
