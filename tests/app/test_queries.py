"""Query strings parsed by the routes themselves, and documented in OpenAPI all the same."""

import pytest
from starlette.requests import Request

from app.errors import APIError
from app.queries import InterpolateQuery, SampleQuery, parse_query


def request_with(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "query_string": query.encode(), "headers": []})


def test_defaults_values_and_unknown_names():
    assert parse_query(request_with(""), SampleQuery) == SampleQuery(
        n=16, seed=None, temperature=1.0, format=None, scale=1
    )
    query = parse_query(
        request_with("n=3&seed=7&temperature=0.5&format=json&scale=2&x=1"), SampleQuery
    )
    assert (query.n, query.seed, query.temperature, query.format, query.scale) == (
        3,
        7,
        0.5,
        "json",
        2,
    )


def test_invalid_values_are_422_naming_each_field():
    with pytest.raises(APIError) as e:
        parse_query(request_with("steps=1&scale=0"), InterpolateQuery)
    assert (e.value.status, e.value.code) == (422, "invalid_parameters")
    assert "query.steps" in e.value.detail and "query.scale" in e.value.detail


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("get", "/sample", {"n", "seed", "temperature", "format", "scale", "digit", "pixels"}),
        ("post", "/decode", {"format", "scale", "pixels", "seed"}),
        ("post", "/reconstruct", {"format", "scale", "pixels", "seed", "draw"}),
        ("post", "/score", {"k"}),
        ("post", "/interpolate", {"steps", "format", "scale"}),
    ],
)
def test_openapi_documents_the_query_parameters(client, method, path, names):
    operation = client.get("/openapi.json").json()["paths"][path][method]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == names
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    assert "requestBody" in operation or method == "get"
