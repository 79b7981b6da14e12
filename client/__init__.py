"""Python client for vae-serve: `VAEClient`, `AsyncVAEClient`, and the `vae-client` CLI."""

from client.api import AsyncVAEClient, VAEClient
from client.errors import VAEConnectionError, VAEError, VAEServiceError
from client.results import Classification, Encoding, Images, ModelInfo, Score

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
