"""Python client for vae-serve: `VAEClient`, `AsyncVAEClient`, and the `vae-client` CLI."""

from client.api import AsyncVAEClient, VAEClient
from client.errors import VAEConnectionError, VAEError, VAEServiceError
from client.results import Encoding, Images, ModelInfo

__all__ = [
    "AsyncVAEClient",
    "Encoding",
    "Images",
    "ModelInfo",
    "VAEClient",
    "VAEConnectionError",
    "VAEError",
    "VAEServiceError",
]
