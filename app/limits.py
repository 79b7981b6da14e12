"""Every request limit of the service: its setting, its status and its error code, in one place.

Each limit is checked as soon as its quantity is known and before the work it bounds: body
bytes as they arrive (app.middleware), an image's size from its header before its pixels
are decompressed (app.imaging), counts and output sizes before any upload is decoded or any
model call is queued (the routers). One status for the kind: a request over a limit of this
server gets **413** with a code naming the limit (a smaller request will do); a value that
is wrong whatever the configuration (n=0, a z of the wrong length) is 422
`invalid_parameters`.

A new limit is a field of app.settings.Settings and one `Limit` line here; `LIMITS` feeds
docs/errors.md's table (tests/app/test_error_docs.py keeps the two in step).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

from app.contract import ModelContract
from app.errors import APIError
from app.settings import Settings

if TYPE_CHECKING:  # app.inference imports this module
    from app.inference import ModelService


@dataclass(frozen=True)
class Limit:
    """A bound on one quantity of a request, set by `Settings.<setting>` (env VAE_<SETTING>)."""

    setting: str
    code: str
    counts: str  # what the limit counts, for the error detail and the docs
    status: int = 413

    def error(self, value: int | str, most: int) -> APIError:
        detail = f"{value} {self.counts}: the limit is {most} (VAE_{self.setting.upper()})"
        return APIError(self.status, self.code, detail)

    def enforce(self, value: int, most: int, shown: str | None = None) -> None:
        """Refuse `value` over `most`; `shown` is how the detail writes it (default: value)."""
        if value > most:
            raise self.error(shown or value, most)

    def check(self, value: int, settings: Settings) -> None:
        """Refuse `value` if it is over this server's setting."""
        self.enforce(value, getattr(settings, self.setting))


class BodyTooLarge(HTTPException):
    """A body over its limit, raised from the middleware's receive while the route reads it.

    An HTTPException, because FastAPI's body parsing turns any other exception into a 400
    "error parsing the body"; raised once the request is routed, so its metrics carry the
    route. app.errors answers it with the limit's own code.
    """

    def __init__(self, limit: "Limit", value: int | str, most: int) -> None:
        error = limit.error(value, most)
        super().__init__(error.status, error.detail)
        self.code = error.code


BODY_BYTES = Limit("max_upload_bytes", "payload_too_large", "bytes in the request body")
JSON_BYTES = Limit("max_json_bytes", "payload_too_large", "bytes in a JSON request body")
IMAGE_PIXELS = Limit("max_image_pixels", "image_too_large", "pixels in one uploaded image")
IMAGES = Limit("max_batch_items", "too_many_images", "images in one request")
VECTORS = Limit("max_samples", "too_many_vectors", "latent vectors (n, or rows of z)")
STEPS = Limit("max_interpolation_steps", "too_many_steps", "interpolation steps")
OUTPUT_PIXELS = Limit(
    "max_output_pixels", "output_too_large", "output pixels (images x H x W x scale^2)"
)
SCORE_K = Limit("max_score_k", "too_many_samples", "importance samples per image (k)")
SCORE_SAMPLES = Limit(
    "max_score_samples", "too_many_samples", "importance samples in one request (images x k)"
)

LIMITS = (
    BODY_BYTES,
    JSON_BYTES,
    IMAGE_PIXELS,
    IMAGES,
    VECTORS,
    STEPS,
    OUTPUT_PIXELS,
    SCORE_K,
    SCORE_SAMPLES,
)


def output_pixels(images: int, scale: int, contract: ModelContract) -> int:
    """Pixels of `images` of the model's H x W, each upscaled `scale` times per side."""
    return images * contract.height * contract.width * scale**2


def check_output(images: int, scale: int, model: "ModelService") -> None:
    """Refuse a response of `images` images at `scale` before any of them is computed."""
    OUTPUT_PIXELS.check(output_pixels(images, scale, model.contract), model.settings)
