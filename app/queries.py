"""Query-string parameters as pydantic models, declared to FastAPI as `Annotated[M, Query()]`.

FastAPI validates them and documents them in OpenAPI from the same models. A name the
route does not take (`/sample?temprature=0.5`) is a 422 naming it (`extra="forbid"`),
never silently ignored.
"""

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

OutputFormat = Literal["png", "json"]
MAX_SEED = 2**63 - 1


class ImageQuery(BaseModel):
    """How images are returned (every route that answers with images)."""

    model_config = ConfigDict(extra="forbid")

    format: OutputFormat | None = Field(
        None, description="png (default; JSON if Accept asks for it) or json"
    )
    scale: int = Field(1, ge=1, le=16, description="PNG upscaling factor")


class SampleQuery(ImageQuery):
    n: int = Field(16, ge=1, description="number of images (at most VAE_MAX_SAMPLES)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="same seed, same images")
    temperature: float = Field(
        1.0, ge=0, le=10, allow_inf_nan=False, description="z ~ N(0, temperature^2 I)"
    )


class InterpolateQuery(ImageQuery):
    steps: int = Field(
        8,
        ge=2,
        description="points on the line, both ends included (at most VAE_MAX_INTERPOLATION_STEPS)",
    )


ImageParams = Annotated[ImageQuery, Query()]
SampleParams = Annotated[SampleQuery, Query()]
InterpolateParams = Annotated[InterpolateQuery, Query()]
