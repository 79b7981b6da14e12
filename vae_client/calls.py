"""Each API call as data (method, path, body, how to read the answer), shared by the sync and
async clients, and the retry policy for 503 answers."""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from numbers import Real
from typing import Any, Generic, TypeVar

import httpx
import numpy as np

from vae_client.errors import VAEServiceError
from vae_client.images import ImageInput, upload_parts
from vae_client.results import Classification, Encoding, Images, ModelInfo, Score

T = TypeVar("T")
LatentInput = Sequence[float] | np.ndarray
JSON = {"format": "json"}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the function that turns a successful response into a result."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    checked: bool = True  # error statuses raise VAEServiceError, and 503s are retried

    def result(self, response: httpx.Response) -> T:
        if self.checked and response.is_error:
            raise VAEServiceError.from_response(response)
        return self.read(response)


def retry_delay(response: httpx.Response, attempt: int, retries: int, cap: float) -> float | None:
    """Seconds to wait before retrying a 503 (its Retry-After, else backoff), at most `cap`;
    None when the response is final."""
    if response.status_code != 503 or attempt >= retries:
        return None
    wait = retry_after(response.headers.get("Retry-After"))
    return min(0.5 * 2**attempt if wait is None else wait, cap)


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), or None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def one_or_many(images: ImageInput | Sequence[ImageInput]) -> tuple[list[ImageInput], bool]:
    """A list or tuple means several images; anything else is one image."""
    if isinstance(images, list | tuple):
        if not images:
            raise ValueError("no images given")
        return list(images), True
    return [images], False


def is_latent(value: object) -> bool:
    """A latent vector: a 1-D array, or a list or tuple of numbers."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
    )


def images_json(response: httpx.Response) -> Images:
    return Images.from_json(response.json())


def encode(images: ImageInput | Sequence[ImageInput]) -> Call[Encoding | list[Encoding]]:
    items, many = one_or_many(images)

    def read(response: httpx.Response) -> Encoding | list[Encoding]:
        body = response.json()
        results = [Encoding.from_json(b) for b in (body if isinstance(body, list) else [body])]
        return results if many else results[0]

    return Call("POST", "/encode", read, files=upload_parts(items))


def per_image(
    path: str, make: Callable[[dict[str, Any]], T], images: ImageInput | Sequence[ImageInput]
) -> Call[T | list[T]]:
    """A POST of images whose answer is one object per image (a list for several)."""
    items, many = one_or_many(images)

    def read(response: httpx.Response) -> T | list[T]:
        body = response.json()
        results = [make(b) for b in (body if isinstance(body, list) else [body])]
        return results if many else results[0]

    return Call("POST", path, read, files=upload_parts(items))


def score(images: ImageInput | Sequence[ImageInput], k: int) -> Call[Score | list[Score]]:
    call = per_image("/score", Score.from_json, images)
    return Call(call.method, call.path, call.read, params={"k": k}, files=call.files)


def classify(
    images: ImageInput | Sequence[ImageInput],
) -> Call[Classification | list[Classification]]:
    return per_image("/classify", Classification.from_json, images)


def decode(z: LatentInput | Sequence[LatentInput], scale: int) -> Call[Images]:
    rows = np.asarray(z, dtype=np.float64)
    if rows.ndim not in (1, 2):
        raise ValueError(f"z must be (D,) or (N, D), not {rows.shape}")
    body = {"z": np.atleast_2d(rows).tolist()}
    return Call("POST", "/decode", images_json, params={**JSON, "scale": scale}, json=body)


def sample(
    n: int, seed: int | None, temperature: float, scale: int, digit: int | None = None
) -> Call[Images]:
    params = {**JSON, "n": n, "temperature": temperature, "scale": scale}
    if seed is not None:
        params["seed"] = seed
    if digit is not None:
        params["digit"] = digit
    return Call("GET", "/sample", images_json, params=params)


def reconstruct(images: ImageInput | Sequence[ImageInput], scale: int) -> Call[Images]:
    items, _ = one_or_many(images)
    params = {**JSON, "scale": scale}
    return Call("POST", "/reconstruct", images_json, params=params, files=upload_parts(items))


def interpolate(
    start: LatentInput | ImageInput, end: LatentInput | ImageInput, steps: int, scale: int
) -> Call[Images]:
    """Between two latent vectors (JSON body) or between the encodings of two images."""
    params = {**JSON, "scale": scale, "steps": steps}
    if is_latent(start) and is_latent(end):
        body = {
            "z_start": np.asarray(start, float).tolist(),
            "z_end": np.asarray(end, float).tolist(),
        }
        return Call("POST", "/interpolate", images_json, params=params, json=body)
    if is_latent(start) or is_latent(end):
        raise TypeError("start and end must both be latent vectors or both be images")
    files = upload_parts([start, end])  # type: ignore[list-item]
    return Call("POST", "/interpolate", images_json, params=params, files=files)


def model_info() -> Call[ModelInfo]:
    return Call("GET", "/model", lambda response: ModelInfo.from_json(response.json()))


def ready() -> Call[bool]:
    return Call("GET", "/readyz", lambda response: response.status_code == 200, checked=False)
