"""Reading image uploads (multipart or raw body) and writing image results (PNG or JSON)."""

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import anyio
import numpy as np
import orjson
import torch
from fastapi import Request, Response
from starlette.datastructures import UploadFile

from app import imaging, limits, resizing
from app.contract import ModelContract
from app.errors import APIError
from app.memory import BudgetExceeded, MemoryBudget
from app.queries import OutputFormat
from app.sampling import bernoulli_pixels
from app.settings import Settings

RAW_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff"}
INLINE_DECODE_BYTES = 16 * 1024
INLINE_ENCODE_PIXELS = 100_000  # larger outputs are written to PNG off the event loop
T = TypeVar("T")
Preprocess = Callable[[bytes, int], np.ndarray]  # upload bytes, max pixels -> (C, H, W)

if TYPE_CHECKING:  # app.inference imports app.limits, which this module imports too
    from app.inference import ModelService


def image_form(description: str, min_items: int = 1, max_items: int | None = None) -> dict:
    """OpenAPI schema of a multipart form holding images in field `file`."""
    files = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "minItems": min_items,
        "description": description,
    }
    if max_items is not None:
        files["maxItems"] = max_items
    return {"type": "object", "properties": {"file": files}, "required": ["file"]}


# OpenAPI description of the two ways to send images (the handlers parse the body themselves).
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": image_form("one or more images (field name file or files)")
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_IMAGE_TYPES},
        },
    }
}


def parsed_as_json(content_type: bytes | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON (on the event loop): no type at all,
    or application/json or application/<anything>+json, in any case, with any parameters."""
    if not content_type:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def read_uploads(request: Request, settings: Settings) -> list[bytes]:
    """The raw bytes of every uploaded image, in order."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        most = settings.max_batch_items
        try:  # the parser stops at the first file over the limit
            form = await request.form(max_files=most, max_fields=16)
        except (limits.BodyTooLarge, BudgetExceeded):
            raise
        except Exception as e:  # starlette's MultiPartException and parser errors
            # starlette raises one MultiPartException (an HTTPException(400) inside an app)
            # for every form limit and parse error: its message is the only handle on this one
            if "Too many files" in str(e):
                raise limits.IMAGES.error("more", most) from None
            raise APIError(
                400, "invalid_multipart", f"cannot parse the multipart body: {e}"
            ) from None
        uploads = [f for key in ("file", "files") for f in form.getlist(key)]
        if not uploads:
            raise APIError(422, "no_image", "the form holds no image: send it in field 'file'")
        if not all(isinstance(f, UploadFile) for f in uploads):
            raise APIError(422, "no_image", "field 'file' must be a file upload, not text")
        limits.IMAGES.enforce(len(uploads), most)
        return [await f.read() for f in uploads]
    if content_type in RAW_IMAGE_TYPES:
        return [await request.body()]
    allowed = ", ".join(["multipart/form-data", *sorted(RAW_IMAGE_TYPES)])
    raise APIError(
        415, "unsupported_media_type", f"send one of {allowed}, not {content_type or 'nothing'}"
    )


def preprocessor(contract: ModelContract) -> Preprocess:
    """The preprocessor the model's card names: the MNIST digit finder (app.digits, through
    app.imaging), or a plain resize to the model's shape (app.resizing)."""
    if contract.preprocessor == "digit":
        return imaging.preprocess
    return partial(resizing.preprocess, shape=contract.image_shape)


async def read_images(request: Request, model: "ModelService") -> torch.Tensor:
    """Uploads -> (N, C, H, W) float32 in [0, 1], the model's inputs, made off the event loop."""
    return await decode_images(request, await read_uploads(request, model.settings), model)


async def decode_images(
    request: Request, blobs: list[bytes], model: "ModelService"
) -> torch.Tensor:
    """Image files -> (N, C, H, W) float32 in [0, 1], by the model's preprocessor."""
    preprocess, most = preprocessor(model.contract), model.settings.max_image_pixels
    size = (model.contract.width, model.contract.height)
    inline = decodes_inline(blobs, size)
    budget = None if inline else request.app.state.memory_budget  # model-sized: ~3 KB

    def preprocess_all() -> list[np.ndarray]:
        return [
            preprocess_one(preprocess, b, i, len(blobs), most, budget) for i, b in enumerate(blobs)
        ]

    # A few model-sized images (a 28x28 PNG is ~0.3 KB) decode faster than a thread
    # hand-off; others go to threads so the event loop keeps serving; at most
    # VAE_DECODE_THREADS at once (app.main), not anyio's default 40, which had 128
    # concurrent photos decoding together: all their buffers alive at once, on one or two
    # cores.
    arrays = await run(request, inline, preprocess_all)
    return torch.from_numpy(np.stack(arrays))


def decodes_inline(blobs: list[bytes], size: tuple[int, int]) -> bool:
    """Whether these uploads may be preprocessed on the event loop: few bytes in all, and
    every image of the model's own `size` (width, height) by its header, read before any
    pixel is decoded.

    What preprocessing costs follows the pixels, not the bytes: a 15 KB 1-bit PNG of
    4000x4000 took 90-420 ms inline, and GET /healthz waited as long. Any image other than
    28x28, even a small one, goes through app.digits' search for the digit, 1.4-3 ms (64
    uploads of 63x63, 13 KB in all, held the loop 87 ms); a 28x28 one costs ~0.1 ms or less
    in any mode or bit depth, about a hand-off to a thread. An unreadable header goes to the
    threads too, where it is refused.
    """
    if sum(map(len, blobs)) > INLINE_DECODE_BYTES:
        return False
    return all(imaging.image_size(blob) == size for blob in blobs)


def preprocess_one(
    preprocess: Preprocess,
    blob: bytes,
    index: int,
    count: int,
    max_pixels: int,
    budget: MemoryBudget | None,
) -> np.ndarray:
    """One upload preprocessed; in a batch, an error says which image it is about. Its pixel
    buffers are held against `budget` while it decodes (never refused: app.memory)."""
    pixels = 0 if budget is None else imaging.decoded_bytes(blob, max_pixels)
    if pixels:
        budget.force(pixels)
    try:
        return preprocess(blob, max_pixels)
    except APIError as e:
        if count > 1:
            e.detail = f"image {index + 1} of {count}: {e.detail}"
        raise
    finally:
        if pixels:
            budget.release(pixels)


def with_inputs(results: list[dict], x: torch.Tensor, include: bool) -> list[dict]:
    """Each result gets `input`, its model input ((H, W), or (H, W, 3) for RGB), when
    `include` (the query's
    include_input, app.queries.InputQuery): so a user can tell a preprocessing failure from
    a model failure."""
    if include:
        for result, image in zip(results, imaging.channels_last(x.numpy()), strict=True):
            result["input"] = image
    return results


def wants_json(request: Request, fmt: OutputFormat | None) -> bool:
    if fmt is not None:
        return fmt == "json"
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "image/png" not in accept


def image_body(
    images: torch.Tensor, as_json: bool, scale: int = 1, columns: int | None = None, **extra
) -> Response:
    """PNG (one image, or a grid of several) or JSON with base64 PNGs and pixel arrays."""
    pixels = images.numpy()
    if as_json:
        body = {
            "count": len(pixels),
            "images": imaging.png_base64(pixels, scale),
            "pixels": imaging.channels_last(pixels),
            **{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in extra.items()},
        }
        json = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(json, media_type="application/json")
    headers = {"X-Seed": str(extra["seed"])} if extra.get("seed") is not None else None
    png = imaging.images_png(pixels, scale, columns)
    return Response(png, media_type="image/png", headers=headers)


async def image_response(
    request: Request,
    images: torch.Tensor,
    as_json: bool,
    scale: int = 1,
    columns: int | None = None,
    **extra: object,
) -> Response:
    """image_body(), here for a small output, else on the bounded decode threads, so the
    event loop keeps answering (/healthz). Its size was bounded before the model ran
    (app.limits.check_output)."""
    inline = images[:, 0].numel() * scale**2 <= INLINE_ENCODE_PIXELS
    body = partial(image_body, images, as_json, scale, columns, **extra)
    return await run(request, inline, body)


async def decoded_response(
    request: Request,
    model: "ModelService",
    operation: str,
    x: torch.Tensor,
    as_json: bool,
    scale: int = 1,
    draw: torch.Generator | None = None,
    columns: int | None = None,
    **extra: object,
) -> Response:
    """The images of `operation` (decode, reconstruct) on `x` as the response, binary
    pixels drawn from them with generator `draw` where given. A small output is drawn and
    encoded on the inference thread, right after its batch's model call (the event loop
    only parses, routes and writes); a larger one as image_response() does."""

    def finish(outputs: tuple[torch.Tensor, ...]) -> Response:
        images = outputs[0] if draw is None else bernoulli_pixels(outputs[0], draw)
        return image_body(images, as_json, scale, columns, **extra)

    if len(x) * model.contract.height * model.contract.width * scale**2 <= INLINE_ENCODE_PIXELS:
        return await model.run(operation, x, finish=finish)
    images = (await model.run(operation, x))[0]
    images = images if draw is None else bernoulli_pixels(images, draw)
    return await image_response(request, images, as_json, scale, columns, **extra)


async def run(request: Request, inline: bool, function: Callable[..., T], *args: object) -> T:
    """function(*args) here, or on one of the VAE_DECODE_THREADS when not `inline`."""
    if inline:
        return function(*args)
    limiter = request.app.state.decode_limiter
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
