"""What the model knows about an image: how likely it is (/score), which digit (/classify)."""

import orjson
from fastapi import APIRouter, Request, Response

from app import limits
from app.dependencies import Model, require
from app.media import IMAGE_BODY, decode_images, read_images, read_uploads, with_inputs
from app.queries import InputParams, ScoreParams
from app.schemas import ERROR_RESPONSES, NOT_SUPPORTED, ClassifyResponse, ScoreResponse
from model.heads import SCORE_OUTPUTS

NUMPY = orjson.OPT_SERIALIZE_NUMPY
router = APIRouter(tags=["images in"], responses={**ERROR_RESPONSES, **NOT_SUPPORTED})
SCORE_FIELDS = SCORE_OUTPUTS[:-1]  # the last, typical, is answered as a bool


def json_response(results: list[dict]) -> Response:
    """One object for one image, a list for several (like /encode)."""
    body = results[0] if len(results) == 1 else results
    return Response(orjson.dumps(body, option=NUMPY), media_type="application/json")


@router.post(
    "/score",
    response_model=ScoreResponse | list[ScoreResponse],
    openapi_extra=IMAGE_BODY,
)
async def score(request: Request, model: Model, query: ScoreParams) -> Response:
    """How likely each image is under the model: ELBO and its parts, the importance-weighted
    log-likelihood with k samples (one batched decode of k samples per image), bits per
    pixel, its percentile among MNIST test digits and whether it is typical.

    Grey levels: log p(x|z) is the expectation over binarizations of x (the cross-entropy
    with soft targets); see the response schema.
    """
    require(model, "score")
    limits.SCORE_K.check(query.k, model.settings)
    blobs = await read_uploads(request, model.settings)
    samples = len(blobs) * query.k
    shown = f"{len(blobs)} x {query.k} = {samples}"
    limits.SCORE_SAMPLES.enforce(samples, model.settings.max_score_samples, shown)
    x = await decode_images(request, blobs, model)
    *values, typical = await model.run("score", x, query.k)
    rows = zip(*(v.tolist() for v in values), typical.tolist(), strict=True)
    results = [
        {**dict(zip(SCORE_FIELDS, row[:-1], strict=True)), "typical": row[-1] > 0.5, "k": query.k}
        for row in rows
    ]
    return json_response(with_inputs(results, x, query.include_input))


@router.post(
    "/classify",
    response_model=ClassifyResponse | list[ClassifyResponse],
    openapi_extra=IMAGE_BODY,
)
async def classify(request: Request, model: Model, query: InputParams) -> Response:
    """Which class each image shows (for MNIST, which digit): probabilities from a small
    classifier trained on the latent mean mu of the training images (encoder frozen), and
    mu itself."""
    require(model, "classify")
    x = await read_images(request, model)
    probabilities, mu = await model.run("classify", x)
    indices = probabilities.argmax(-1).tolist()
    names = model.contract.classes
    results = [
        {
            "class": names[indices[i]],
            "digit": indices[i],
            "probabilities": probabilities[i].numpy(),
            "mu": mu[i].numpy(),
        }
        for i in range(len(x))
    ]
    return json_response(with_inputs(results, x, query.include_input))
