"""Reading image uploads (multipart or raw body) and writing image results (PNG or JSON)."""

import anyio
import numpy as np
import orjson
import torch
from fastapi import Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from app import imaging
from app.errors import APIError
from app.queries import OutputFormat, parse_query
from app.settings import Settings

RAW_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff"}
INLINE_DECODE_BYTES = 16 * 1024


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


async def read_uploads(request: Request, settings: Settings) -> list[bytes]:
    """The raw bytes of every uploaded image, in order."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=settings.max_batch_items + 1, max_fields=16)
        except Exception as e:  # starlette's MultiPartException and parser errors
            raise APIError(
                400, "invalid_multipart", f"cannot parse the multipart body: {e}"
            ) from None
        uploads = [f for key in ("file", "files") for f in form.getlist(key)]
        if not uploads:
            raise APIError(422, "no_image", "the form holds no image: send it in field 'file'")
        if not all(isinstance(f, UploadFile) for f in uploads):
            raise APIError(422, "no_image", "field 'file' must be a file upload, not text")
        if len(uploads) > settings.max_batch_items:
            raise APIError(
                413, "too_many_images", f"at most {settings.max_batch_items} images per request"
            )
        return [await f.read() for f in uploads]
    if content_type in RAW_IMAGE_TYPES:
        return [await request.body()]
    allowed = ", ".join(["multipart/form-data", *sorted(RAW_IMAGE_TYPES)])
    raise APIError(
        415, "unsupported_media_type", f"send one of {allowed}, not {content_type or 'nothing'}"
    )


async def read_images(request: Request, settings: Settings) -> torch.Tensor:
    """Uploads -> (N, 1, 28, 28) float32 in [0, 1], preprocessed like MNIST off the event loop."""
    blobs = await read_uploads(request, settings)

    def preprocess_all() -> list[np.ndarray]:
        return [
            preprocess_one(b, i, len(blobs), settings.max_image_pixels) for i, b in enumerate(blobs)
        ]

    # Small uploads (a 28x28 PNG is ~0.3 KB) decode faster than a thread hand-off; big ones
    # (photos) go to threads so the event loop keeps serving; at most VAE_DECODE_THREADS at
    # once (app.main), not anyio's default 40, which had 128 concurrent photos decoding
    # together: all their buffers alive at once, on one or two cores.
    if sum(map(len, blobs)) <= INLINE_DECODE_BYTES:
        arrays = preprocess_all()
    else:
        limiter = request.app.state.decode_limiter
        arrays = await anyio.to_thread.run_sync(preprocess_all, limiter=limiter)
    return torch.from_numpy(np.stack(arrays))


def preprocess_one(blob: bytes, index: int, count: int, max_pixels: int) -> np.ndarray:
    """One upload preprocessed; in a batch, an error says which image it is about."""
    try:
        return imaging.preprocess(blob, max_pixels)
    except APIError as e:
        if count > 1:
            e.detail = f"image {index + 1} of {count}: {e.detail}"
        raise


class InputQuery(BaseModel):
    include_input: bool = Field(
        False, description="add `input` to each result: the 28x28 image the encoder saw"
    )


def include_input(request: Request) -> bool:
    """The query's include_input (parse it before the work: a bad value is a 422 at once)."""
    if "include_input" not in request.query_params:  # the hot path: no validation to pay
        return False
    return parse_query(request, InputQuery).include_input


def with_inputs(results: list[dict], x: torch.Tensor, include: bool) -> list[dict]:
    """Each result gets `input`, its (28, 28) model input, when `include` (include_input=true
    in the query, see include_input): so a user can tell a preprocessing failure from a model
    failure."""
    if include:
        for result, image in zip(results, x[:, 0].numpy(), strict=True):
            result["input"] = image
    return results


def wants_json(request: Request, fmt: OutputFormat | None) -> bool:
    if fmt is not None:
        return fmt == "json"
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "image/png" not in accept


def image_response(
    images: torch.Tensor,
    as_json: bool,
    scale: int = 1,
    columns: int | None = None,
    **extra: object,
) -> Response:
    """PNG (one image, or a grid of several) or JSON with base64 PNGs and pixel arrays."""
    pixels = images.numpy()
    if not as_json:
        headers = {"X-Seed": str(extra["seed"])} if extra.get("seed") is not None else None
        png = imaging.images_png(pixels, scale, columns)
        return Response(png, media_type="image/png", headers=headers)
    body = {
        "count": len(pixels),
        "images": imaging.png_base64(pixels, scale),
        "pixels": pixels[:, 0],
        **{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in extra.items()},
    }
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
