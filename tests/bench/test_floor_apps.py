"""The floor apps of docs/benchmarks.md answer the encode28 request with their constant body."""

import pytest
from fastapi.testclient import TestClient

from scripts.bench.floor_apps import BODY, fastapi_route, raw_asgi


@pytest.mark.parametrize("app", [raw_asgi, fastapi_route])
def test_floor_app_answers_a_png_post(app):
    response = TestClient(app).post(
        "/encode", content=b"\x89PNG fake", headers={"Content-Type": "image/png"}
    )
    assert (response.status_code, response.content) == (200, BODY)
    assert response.headers["content-type"] == "application/json"
