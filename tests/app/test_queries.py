"""Query strings as FastAPI query-parameter models: validated, documented, unknown names refused."""

import pytest

from tests.conftest import LATENT


def test_defaults_and_values_reach_the_route(client):
    r = client.get("/sample?format=json")
    assert r.status_code == 200
    assert r.json()["count"] == 16
    r = client.get("/sample?n=3&seed=7&temperature=0.5&format=json&scale=2")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 3 and body["seed"] == 7


@pytest.mark.parametrize(
    ("path", "name"),
    [("/sample?temprature=0.5", "temprature"), ("/sample?n=2&Scale=2", "Scale")],
)
def test_an_unknown_parameter_is_a_422_naming_it(client, path, name):
    r = client.get(path)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_parameters"
    assert f"query.{name}" in r.json()["detail"]


def test_invalid_values_are_422_naming_each_field(client):
    r = client.post(
        "/interpolate?steps=1&scale=0", json={"z_start": [0] * LATENT, "z_end": [0] * LATENT}
    )
    assert r.status_code == 422
    assert "query.steps" in r.json()["detail"] and "query.scale" in r.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        (
            "get",
            "/sample",
            {"n", "seed", "temperature", "format", "scale", "class", "digit", "pixels"},
        ),
        ("post", "/decode", {"format", "scale", "pixels", "seed"}),
        ("post", "/reconstruct", {"format", "scale", "pixels", "seed", "draw"}),
        ("post", "/score", {"k", "include_input"}),
        ("post", "/classify", {"include_input"}),
        ("post", "/interpolate", {"steps", "format", "scale"}),
    ],
)
def test_openapi_documents_the_query_parameters(client, method, path, names):
    operation = client.get("/openapi.json").json()["paths"][path][method]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(parameters) == names
    assert not any(p["required"] for p in parameters.values())
