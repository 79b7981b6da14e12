"""`vae-serve --check`: the service started in-process on its model (VAE_MODEL_PATH), one
request to each route, exit status 0 only if every one answered 2xx.

The image build runs it, so an image whose model or packages cannot serve is never shipped.
It also leaves behind the bytecode of exactly the modules that serving imports: the image
is installed without any and compiles only those (docs/deploy.md, "The image").
"""

import io
import math
import sys
import time
import warnings
from collections.abc import Iterator

from PIL import Image

from app.main import create_app
from app.settings import Settings

Request = tuple[str, str, dict]


with warnings.catch_warnings():  # the deprecation of httpx in favour of httpx2: test-only
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def uploads(png: bytes) -> dict:
    """The same image as a PNG and a JPEG, so both decoders are exercised."""
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(jpeg, format="JPEG")
    return {"files": [("file", ("a.png", png, "image/png")), ("file", ("b.jpg", jpeg.getvalue()))]}


def requests(client: TestClient) -> Iterator[Request]:
    """Every route once, the image routes with an image the model itself drew."""
    yield from (("GET", path, {}) for path in ("/healthz", "/readyz", "/metrics", "/"))
    yield from (("GET", path, {}) for path in ("/docs", "/openapi.json", "/model"))
    yield "GET", "/sample?n=4&seed=0", {}
    yield "GET", "/sample?n=2&seed=0&format=json", {}
    model = client.get("/model").json()
    png = client.get("/sample?n=1&seed=1").content
    for route in ("/encode", "/reconstruct", "/interpolate"):
        yield "POST", route, uploads(png)
    capabilities = model["capabilities"]
    if "score" in capabilities:
        yield "POST", "/score?k=2", uploads(png)
    if "classify" in capabilities:
        yield "POST", "/classify", uploads(png)
    if "conditional_sampling" in capabilities:
        yield "GET", "/sample?n=2&digit=0&seed=0", {}
    shape = [1, *model["contract"]["image_shape"]]
    tensor = {"name": "image", "datatype": "FP32", "shape": shape, "data": [0.5] * math.prod(shape)}
    yield "GET", "/v2/models/vae-encoder", {}
    yield "POST", "/v2/models/vae-encoder/infer", {"json": {"inputs": [tensor]}}


def run(settings: Settings | None = None) -> int:
    """Send the requests; print one line each; 0 if all answered 2xx, else 1."""
    failed = 0
    with TestClient(create_app(settings or Settings()), raise_server_exceptions=False) as client:
        for method, path, options in requests(client):
            started = time.perf_counter()
            response = client.request(method, path, **options)
            ms = (time.perf_counter() - started) * 1000
            ok = response.is_success
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {response.status_code} {method} {path} {ms:.0f} ms")
            if not ok:
                print(f"     {response.text[:300]}")
    print(f"vae-serve --check: {'all routes answered' if not failed else f'{failed} failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
