"""`VAEClient` (sync) and `AsyncVAEClient` (asyncio): the same methods over httpx.

with VAEClient() as vae:                    # $VAE_URL or http://127.0.0.1:8000
    samples = vae.sample(16, seed=1)       # Images: .pixels (16, 28, 28), .grid()
    code = vae.encode("digit.png")         # Encoding: .mu, .sigma (D,)
"""

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any, TypeVar, overload

import httpx

from vae_client import calls
from vae_client.calls import Call, LatentInput
from vae_client.errors import VAEConnectionError
from vae_client.images import ImageInput
from vae_client.results import Classification, Encoding, Images, ModelInfo, Score

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"


class _Settings:
    """Where the service is, the API key, and the retry policy for 503 answers."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        retries: int,
        max_retry_wait: float,
    ) -> None:
        self.base_url = (base_url or os.environ.get("VAE_URL") or DEFAULT_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the service URL {self.base_url!r} has no scheme: add http:// (or https://)"
            )
        self.api_key = api_key or os.environ.get("VAE_API_KEY") or None
        self.timeout, self.retries, self.max_retry_wait = timeout, retries, max_retry_wait

    def request_args(self, call: Call[Any]) -> dict[str, Any]:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        return {
            "method": call.method,
            "url": call.path,
            "params": call.params,
            "json": call.json,
            "files": call.files,
            "headers": headers,
        }

    def retry_delay(self, call: Call[Any], response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before sending `call` again, or None to take this response."""
        if not call.checked:
            return None
        return calls.retry_delay(response, attempt, self.retries, self.max_retry_wait)

    def unreachable(self, error: httpx.TransportError) -> VAEConnectionError:
        return VAEConnectionError(f"cannot reach the service at {self.base_url}: {error!r}")


class VAEClient(_Settings):
    """Synchronous client. Arguments left out come from $VAE_URL and $VAE_API_KEY.

    503 answers (overloaded, not ready) are retried up to `retries` times, waiting what their
    Retry-After says but at most `max_retry_wait` seconds. Pass `http` to use your own
    httpx.Client (its base URL is used; it is not closed by `close`).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries, max_retry_wait)
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        if http is not None:
            self.base_url = str(http.base_url).rstrip("/")

    def __enter__(self) -> "VAEClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(**self.request_args(call))
            except httpx.TransportError as e:
                raise self.unreachable(e) from e
            delay = self.retry_delay(call, response, attempt)
            if delay is None:
                return call.result(response)
            time.sleep(delay)
            attempt += 1

    @overload
    def encode(self, images: ImageInput) -> Encoding: ...
    @overload
    def encode(self, images: Sequence[ImageInput]) -> list[Encoding]: ...
    def encode(self, images: ImageInput | Sequence[ImageInput]) -> Encoding | list[Encoding]:
        """q(z|x) of one image, or a list of them for a list of images."""
        return self._send(calls.encode(images))

    def decode(self, z: LatentInput | Sequence[LatentInput], scale: int = 1) -> Images:
        """Decode one latent vector (D,) or several (N, D)."""
        return self._send(calls.decode(z, scale))

    def sample(
        self,
        n: int = 16,
        seed: int | None = None,
        temperature: float = 1.0,
        scale: int = 1,
        digit: int | None = None,
    ) -> Images:
        """n images from the prior N(0, temperature^2 I), or of one `digit` (models with
        conditional_sampling); the result carries `z` and `seed`."""
        return self._send(calls.sample(n, seed, temperature, scale, digit))

    @overload
    def score(self, images: ImageInput, k: int = 100) -> Score: ...
    @overload
    def score(self, images: Sequence[ImageInput], k: int = 100) -> list[Score]: ...
    def score(self, images: ImageInput | Sequence[ImageInput], k: int = 100) -> Score | list[Score]:
        """How likely each image is under the model (k importance samples)."""
        return self._send(calls.score(images, k))

    @overload
    def classify(self, images: ImageInput) -> Classification: ...
    @overload
    def classify(self, images: Sequence[ImageInput]) -> list[Classification]: ...
    def classify(
        self, images: ImageInput | Sequence[ImageInput]
    ) -> Classification | list[Classification]:
        """The digit of each image, with its 10 probabilities and mu."""
        return self._send(calls.classify(images))

    def reconstruct(self, images: ImageInput | Sequence[ImageInput], scale: int = 1) -> Images:
        """Images through the VAE; the result carries the preprocessed `inputs`."""
        return self._send(calls.reconstruct(images, scale))

    def interpolate(
        self,
        start: LatentInput | ImageInput,
        end: LatentInput | ImageInput,
        steps: int = 8,
        scale: int = 1,
    ) -> Images:
        """`steps` images on the line between two latent vectors, or two images' encodings."""
        return self._send(calls.interpolate(start, end, steps, scale))

    def model_info(self) -> ModelInfo:
        return self._send(calls.model_info())

    def ready(self) -> bool:
        """Whether the service is ready to serve (GET /readyz); never retried."""
        return self._send(calls.ready())


class AsyncVAEClient(_Settings):
    """Asynchronous client: the methods of `VAEClient`, awaited. Pass `http` to use your own
    httpx.AsyncClient (e.g. with httpx.ASGITransport)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, retries, max_retry_wait)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        if http is not None:
            self.base_url = str(http.base_url).rstrip("/")

    async def __aenter__(self) -> "AsyncVAEClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(**self.request_args(call))
            except httpx.TransportError as e:
                raise self.unreachable(e) from e
            delay = self.retry_delay(call, response, attempt)
            if delay is None:
                return call.result(response)
            await asyncio.sleep(delay)
            attempt += 1

    @overload
    async def encode(self, images: ImageInput) -> Encoding: ...
    @overload
    async def encode(self, images: Sequence[ImageInput]) -> list[Encoding]: ...
    async def encode(self, images: ImageInput | Sequence[ImageInput]) -> Encoding | list[Encoding]:
        return await self._send(calls.encode(images))

    async def decode(self, z: LatentInput | Sequence[LatentInput], scale: int = 1) -> Images:
        return await self._send(calls.decode(z, scale))

    async def sample(
        self,
        n: int = 16,
        seed: int | None = None,
        temperature: float = 1.0,
        scale: int = 1,
        digit: int | None = None,
    ) -> Images:
        return await self._send(calls.sample(n, seed, temperature, scale, digit))

    async def score(
        self, images: ImageInput | Sequence[ImageInput], k: int = 100
    ) -> Score | list[Score]:
        return await self._send(calls.score(images, k))

    async def classify(
        self, images: ImageInput | Sequence[ImageInput]
    ) -> Classification | list[Classification]:
        return await self._send(calls.classify(images))

    async def reconstruct(
        self, images: ImageInput | Sequence[ImageInput], scale: int = 1
    ) -> Images:
        return await self._send(calls.reconstruct(images, scale))

    async def interpolate(
        self,
        start: LatentInput | ImageInput,
        end: LatentInput | ImageInput,
        steps: int = 8,
        scale: int = 1,
    ) -> Images:
        return await self._send(calls.interpolate(start, end, steps, scale))

    async def model_info(self) -> ModelInfo:
        return await self._send(calls.model_info())

    async def ready(self) -> bool:
        return await self._send(calls.ready())
