"""Security: the API key guards every API route (not health, readiness or metrics), CORS is
closed unless origins are configured, and X-Request-ID is echoed only when well-formed.
"""

import re

import pytest

from tests.helpers import assert_error
from tests.oip.helpers import ENCODER, assert_v2_error, json_request, stroke_image
from tests.reliability.conftest import LATENT

KEY = "s3cret-key"
Z = [0.0] * LATENT
OPEN_PATHS = {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}


def api_calls(digit_png: bytes) -> list[tuple[str, str, dict]]:
    image = {"content": digit_png, "headers": {"content-type": "image/png"}}
    return [
        ("POST", "/encode", image),
        ("POST", "/reconstruct", image),
        ("POST", "/decode", {"json": {"z": Z}}),
        ("GET", "/sample?n=2", {}),
        ("POST", "/interpolate", {"json": {"z_start": Z, "z_end": Z}}),
        ("GET", "/model", {}),
        ("GET", "/v2", {}),
        ("GET", "/v2/models/vae-encoder", {}),
        ("GET", "/v2/models/vae-encoder/ready", {}),
        ("POST", ENCODER, {"json": json_request("image", stroke_image())}),
    ]


def assert_unauthorized(response, path: str) -> None:
    """401 in the route's error shape (the Open Inference Protocol's under /v2)."""
    if path.startswith("/v2"):
        assert_v2_error(response, 401)
    else:
        assert_error(response, 401, "unauthorized")


def call(client, method, path, kwargs, headers):
    kwargs = {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}
    return client.request(method, path, **kwargs)


@pytest.fixture
def keyed(make_client):
    return make_client(api_key=KEY)


def test_every_api_route_needs_the_key(keyed, digit_png):
    for method, path, kwargs in api_calls(digit_png):
        for headers in (
            {},
            {"X-API-Key": "wrong"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {KEY}"},
            {"X-API-Key": ""},
        ):
            response = call(keyed, method, path, kwargs, headers)
            assert_unauthorized(response, path)
            assert response.headers["www-authenticate"] == "Bearer"
        for headers in (
            {"X-API-Key": KEY},
            {"Authorization": f"Bearer {KEY}"},
            {"Authorization": f"bearer {KEY}"},
        ):
            assert call(keyed, method, path, kwargs, headers).status_code == 200, (path, headers)


def test_x_api_key_is_read_first_and_an_empty_one_is_absent(keyed):
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert_unauthorized(keyed.get("/model", headers={"X-API-Key": "wrong", **bearer}), "/model")
    assert keyed.get("/model", headers={"X-API-Key": "", **bearer}).status_code == 200


def test_the_key_is_checked_before_the_body_is_parsed(keyed):
    response = keyed.post("/encode", content=b"junk", headers={"content-type": "image/png"})
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("path", sorted(OPEN_PATHS))
def test_operations_routes_stay_open(keyed, path):
    assert keyed.get(path).status_code == 200


def test_no_route_lists_a_key_route_as_open(keyed):
    """Every operation in the schema except the operations ones is guarded."""
    schema = keyed.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method in operations:
            response = keyed.request(method.upper(), path)
            if path in OPEN_PATHS:
                assert response.status_code == 200
            else:
                assert_unauthorized(response, path)


def test_cors_is_closed_by_default(client):
    origin = {"Origin": "https://evil.example"}
    response = client.get("/model", headers=origin)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/encode", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400


def test_cors_opens_for_configured_origins_only(make_client):
    client = make_client(cors_origins=["https://good.example"])
    good = client.get("/model", headers={"Origin": "https://good.example"})
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    evil = client.get("/model", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    preflight = client.options(
        "/encode",
        headers={
            "Origin": "https://good.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key, X-Envoy-Expected-Rq-Timeout-Ms",
        },
    )
    assert preflight.status_code == 200  # the key and a deadline may come from a browser
    assert preflight.headers["access-control-allow-origin"] == "https://good.example"


def test_a_well_formed_request_id_is_echoed(client):
    for given in ["abc-123", "a.b:c_d", "x" * 128]:
        assert (
            client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given
        )


@pytest.mark.parametrize(
    "given",
    ["x" * 10_000, "x" * 129, "two\nlines", "a\r\nSet-Cookie: x=1", "has space", "<script>", "é"],
)
def test_a_malformed_request_id_is_replaced(client, given):
    headers = [(b"x-request-id", given.encode("latin-1", "replace"))]
    response = client.get("/healthz", headers=headers)
    echoed = response.headers["x-request-id"]
    assert echoed != given and re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert "set-cookie" not in response.headers


def test_error_bodies_hold_no_traces_or_paths(client):
    for response in [
        client.post(
            "/encode", content=b"\x89PNG\r\n\x1a\n\0\0", headers={"content-type": "image/png"}
        ),
        client.post("/decode", content=b'{"z": [', headers={"content-type": "application/json"}),
        client.get("/sample?n=x"),
        client.get("/static/../app/main.py"),
        client.get("/static/%2e%2e/app/main.py"),
    ]:
        assert 400 <= response.status_code < 500
        assert "Traceback" not in response.text and "/work/" not in response.text
        assert "import" not in response.text
