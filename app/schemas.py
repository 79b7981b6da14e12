"""Request and response bodies (pydantic); their docstrings and examples feed the OpenAPI page."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# `input` of /encode, /score and /classify results with include_input=true (app.media.with_inputs)
ModelInput = Annotated[
    list | None, Field(description="the model input, (H, W) or (H, W, 3) for RGB, in [0, 1]")
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EncodeResponse(BaseModel):
    """The Gaussian q(z|x) of one image."""

    mu: list[float] = Field(description="mean of q(z|x), D values")
    sigma: list[float] = Field(description="standard deviation of q(z|x), D values > 0")
    latent_dim: int = Field(description="D")
    kl: float | None = Field(None, description="KL(q(z|x) || N(0, I)) in nats")
    input: ModelInput = None


class ScoreResponse(BaseModel):
    """How likely one image is under the model, in nats (natural-log units).

    The decoder is a Bernoulli model of binary pixels; for a grey-level input x in [0, 1]
    every log p(x|z) is the expectation over binarizations b ~ Bernoulli(x) (independent
    pixels): sum_i x_i log p_i + (1 - x_i) log(1 - p_i), the cross-entropy with soft
    targets (exactly log p(x|z) for a binary x). The k samples z ~ q(z|x) are drawn afresh
    on each call, so figures vary slightly between calls (less as k grows).
    """

    elbo: float = Field(description="ELBO = reconstruction - kl, over the k samples")
    reconstruction: float = Field(description="E_q(z|x)[log p(x|z)], estimated from k samples")
    kl: float = Field(description="KL(q(z|x) || N(0, I)), closed form")
    log_likelihood: float = Field(
        description="importance-weighted bound on log p(x) with k samples (Burda et al. 2015)"
    )
    bits_per_dim: float = Field(description="-log_likelihood / (C x H x W ln 2)")
    percentile: float = Field(
        description="share (%) of the model's held-out images (MNIST: the 10,000 test "
        "digits) whose log_likelihood (K=100, at export) is lower: 50 is a median one"
    )
    ood_score: float = Field(
        description="how typical the image is of the training data, higher = more typical: "
        "the log-density of (log_likelihood, reconstruction, kl, a local-context background's "
        "log-likelihood) under a kernel density fitted on training images at export "
        "(docs/capabilities.md). Unlike log_likelihood, it is low for simple inputs such "
        "as letters or strokes, which a raw likelihood rates as more likely than digits"
    )
    ood_percentile: float = Field(
        description="share (%) of held-out images (MNIST: validation digits the model never "
        "trained on) with a lower ood_score"
    )
    typical: bool = Field(
        description="ood_score at or above the model's threshold (the 1st percentile of its "
        "held-out images; GET /model card.capabilities.typical_threshold). Calibrated at "
        "k=100: a smaller k lowers log_likelihood, and rejects more"
    )
    k: int = Field(description="importance samples used")
    input: ModelInput = None


class ClassifyResponse(BaseModel):
    """The class of one image, from a classifier on the latent mean (encoder frozen)."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="the most probable class's name")
    digit: int = Field(description="its index in the model's classes (for MNIST, the digit)")
    probabilities: list[float] = Field(
        description="one probability per class, in the order of GET /model contract.classes"
    )
    mu: list[float] = Field(description="mean of q(z|x), D values (the classifier's input)")
    input: ModelInput = None


class DecodeRequest(StrictModel):
    """Latent vectors to decode: one vector or a list of vectors of length D."""

    z: list[list[float]] | list[float] = Field(
        description="(N, D) or (D,); the example has the served model's D (app.openapi)"
    )


class InterpolateRequest(StrictModel):
    """The two ends of the line to decode (the number of points is the query's `steps`)."""

    z_start: list[float] = Field(description="D floats")
    z_end: list[float] = Field(description="D floats")


class InterpolateDigitsRequest(StrictModel):
    """The line between two digits' latent points (models with conditional_sampling): for
    each digit, the mean of the component of its latent mixture at the median of the
    component weights (the number of points is the query's `steps`)."""

    # class indices (the digits, for MNIST), checked against the model's classes;
    # strict: true is not the class 1
    digit_start: int = Field(ge=0, strict=True)
    digit_end: int = Field(ge=0, strict=True)


class ImagesResponse(BaseModel):
    """Images as base64 PNGs and as pixel arrays (probabilities of a white pixel)."""

    count: int
    images: list[str] = Field(description="base64-encoded PNGs of H x W, grey or RGB")
    pixels: list = Field(description="(N, H, W) values in [0, 1]; (N, H, W, 3) for RGB")
    z: list[list[float]] | None = Field(None, description="the latent vectors decoded")
    seed: int | None = Field(None, description="seed that reproduces these samples")
    inputs: list | None = Field(
        None, description="/reconstruct: the preprocessed inputs the encoder saw, as `pixels`"
    )
    mu: list[list[float]] | None = Field(None, description="/reconstruct: mean of q(z|x), (N, D)")
    sigma: list[list[float]] | None = Field(
        None, description="/reconstruct: standard deviation of q(z|x), (N, D)"
    )


class ContractResponse(BaseModel):
    image_shape: list[int] = Field(description="C, H, W of every image in and out")
    latent_dim: int
    likelihood: str = Field(description="p(x|z), e.g. bernoulli")
    classes: list[str] = Field(description="class names (for /classify and ?class=), or none")
    preprocessor: str = Field(description="how uploads are made model inputs: digit or resize")
    capabilities: list[str]


class ModelResponse(BaseModel):
    """The model card and how it is being served."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    latent_dim: int
    device: str
    precision: str
    batching: bool
    capabilities: list[str] = Field(
        description="optional abilities of the loaded model file: score, classify, "
        "conditional_sampling (their routes answer 501 not_supported without them)"
    )
    contract: ContractResponse = Field(
        description="what the service read from the model file and serves by (app.contract)"
    )
    card: dict


class ErrorResponse(BaseModel):
    error: str = Field(description="stable machine-readable code", examples=["invalid_image"])
    detail: str = Field(description="what went wrong, for people")


class HealthResponse(BaseModel):
    status: Literal["ok", "ready", "not_ready", "draining"]


class ReconstructResponse(ImagesResponse):
    """Reconstructions, with the preprocessed inputs the encoder saw and q(z|x)."""

    inputs: list = Field(description="model inputs in [0, 1], (N, H, W) or (N, H, W, 3)")
    mu: list[list[float]] = Field(description="(N, D) means of q(z|x)")
    sigma: list[list[float]] = Field(description="(N, D) standard deviations of q(z|x)")


ERROR_MEANINGS = {
    400: "undecodable or corrupt image, or an unparsable multipart body",
    401: "API key missing or wrong",
    413: "over one of the server's limits (VAE_MAX_*): send less",
    415: "unsupported media type",
    422: "invalid or unknown parameters, or no digit found in an image (no_digit)",
    501: "not_supported: the model file lacks this capability",
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
NOT_SUPPORTED = errors(501)
