"""Python client for vae-serve: `VAEClient`, `AsyncVAEClient`, and the `vae-client` CLI."""

from vae_client.api import AsyncVAEClient, VAEClient
from vae_client.errors import VAEConnectionError, VAEError, VAEServiceError
from vae_client.results import Classification, Encoding, Images, ModelInfo, Score

__all__ = [
    "AsyncVAEClient",
    "Classification",
    "Encoding",
    "Images",
    "ModelInfo",
    "Score",
    "VAEClient",
    "VAEConnectionError",
    "VAEError",
    "VAEServiceError",
]
