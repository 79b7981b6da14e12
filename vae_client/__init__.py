"""Python client for vae-serve: `VAEClient`, `AsyncVAEClient`, and the `vae-client` CLI."""

from vae_client.api import AsyncVAEClient, VAEClient
from vae_client.errors import VAEConnectionError, VAEError, VAEServiceError
from vae_client.results import Encoding, Images, ModelInfo

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
