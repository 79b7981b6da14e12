"""Every setting of the service, read from environment variables prefixed VAE_ (or a .env file).

Defaults work on a laptop: the shipped model, CPU or the first GPU, one inference thread.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # where app/ and model/ are installed
SHIPPED_MODEL = PACKAGE_ROOT / "model" / "vae_mnist.pt"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAE_", env_file=".env", extra="ignore")

    # Model and hardware
    model_path: Path = Field(
        SHIPPED_MODEL,
        description="TorchScript file to serve; a relative path not found from the working "
        "directory is looked up among the installed packages, so model/vae_dsprites.pt names "
        "a shipped model in a checkout and in the image alike",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N (auto: CUDA if present)")
    torch_threads: int = Field(1, ge=1, le=256, description="torch intra-op threads")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="weights and arithmetic; bfloat16 (CPUs with AVX-512 BF16): faster large "
        "decodes under load, slower small requests, pixels within a few grey levels of "
        "float32 (docs/benchmarks.md, Precision)",
    )
    warmup: bool = Field(True, description="run every method once before reporting ready")

    # Dynamic batching
    batching: bool = Field(True, description="gather concurrent model calls into one")
    max_batch_size: int = Field(256, ge=1, le=4096, description="rows per batched model call")
    max_wait_ms: float = Field(0.0, ge=0, le=1000, description="extra wait for a batch to fill")
    queue_capacity: int = Field(256, ge=1, description="model calls waiting or running; more: 503")
    request_timeout_s: float | None = Field(
        None,
        gt=0,
        description="default deadline of a request, counted from its arrival, when it sets "
        "none (X-Envoy-Expected-Rq-Timeout-Ms, /v2's timeout): past it, a request waiting for "
        "the model is dropped and answered 504 (app/deadlines.py); unset: no deadline",
    )

    # Limits (app/limits.py: a request over one gets 413 with a code naming it)
    max_upload_bytes: int = Field(10 * 2**20, ge=1024, description="largest request body")
    max_json_bytes: int = Field(
        2**20, ge=1024, description="largest JSON body (parsed on the event loop, so smaller)"
    )
    max_image_pixels: int = Field(16_000_000, ge=784, description="largest image (w*h) decoded")
    max_samples: int = Field(256, ge=1, description="largest n for /sample and rows for /decode")
    max_batch_items: int = Field(64, ge=1, description="most images in one /encode request")
    max_interpolation_steps: int = Field(64, ge=2, description="most steps for /interpolate")
    max_score_k: int = Field(1000, ge=1, description="largest k (importance samples) of /score")
    max_score_samples: int = Field(
        6400,
        ge=1,
        description="most importance samples (images x k) per /score request and per batched "
        "call: bounds its memory (for MNIST, 6400 rows of 784 pixels: ~20 MiB per tensor)",
    )
    max_output_pixels: int = Field(
        4_194_304,
        ge=784,
        description="largest response in pixels, images x H x W x scale^2 (e.g. 256 "
        "28x28 images at scale 4)",
    )
    max_inflight_bytes: int = Field(
        512 * 2**20,
        ge=2**20,
        description="most bytes of request bodies and decoded images held at once, all "
        "requests together (app/memory.py); a body past it gets 503 memory_budget before it "
        "is read. 512 MiB fits a 2 GiB container (docs/deploy.md, Memory)",
    )
    decode_threads: int = Field(
        2, ge=1, le=64, description="threads decoding large uploads (bounds their memory)"
    )

    # Security and HTTP
    api_key: str | None = Field(None, description="if set, required as X-API-Key or Bearer token")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins")

    # Logging and process
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING | ERROR")
    log_format: Literal["json", "text"] = Field("json", description="json or text")
    access_log: bool = Field(True, description="one log record per request")
    access_log_flush_ms: float = Field(
        100,
        ge=0,
        le=10_000,
        description="access lines are written together at most this long after their "
        "request (0: each at once); one write per line cost ~25 % of small-request throughput",
    )
    host: str = Field("127.0.0.1", description="bind address (vae-serve)")
    port: int = Field(8000, ge=1, le=65535, description="port (vae-serve)")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (vae-serve)")
    loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio",
        description="event loop (vae-serve): the same throughput here; uvloop had a p99 of "
        "0.6-1.2 s at 128 connections from TCP retransmissions, asyncio 0.17-0.24 s",
    )
    graceful_timeout_s: float = Field(20.0, ge=0, description="drain time on SIGTERM (vae-serve)")

    @field_validator("model_path")
    @classmethod
    def shipped_model_by_relative_path(cls, path: Path) -> Path:
        installed = PACKAGE_ROOT / path
        if not path.is_absolute() and not path.exists() and installed.exists():
            return installed
        return path

    @field_validator("api_key")
    @classmethod
    def empty_key_means_none(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
