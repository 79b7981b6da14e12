"""The OpenAPI schema describes every answer once, from the pydantic models."""

import pytest

from app.schemas import ImagesResponse, ReconstructResponse
from tests.conftest import LATENT


@pytest.fixture
def schema(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize(
    ("method", "path", "model"),
    [
        ("get", "/sample", "ImagesResponse"),
        ("post", "/decode", "ImagesResponse"),
        ("post", "/interpolate", "ImagesResponse"),
        ("post", "/reconstruct", "ReconstructResponse"),
    ],
)
def test_png_and_json_answers_are_both_described(schema, method, path, model):
    content = schema["paths"][path][method]["responses"]["200"]["content"]
    assert content["image/png"]["schema"] == {"type": "string", "format": "binary"}
    assert content["application/json"]["schema"]["$ref"].endswith(f"/{model}")
    fields = schema["components"]["schemas"][model]["properties"]
    assert {"count", "images", "pixels", "z", "seed"} <= set(fields)


@pytest.mark.parametrize(
    ("path", "model"),
    [("/sample?n=2&format=json", ImagesResponse), ("/sample?n=1&format=json", ImagesResponse)],
)
def test_json_answers_match_their_models(client, path, model):
    r = client.get(path)
    assert r.status_code == 200
    model.model_validate(r.json())


def test_reconstruct_json_matches_its_model(client, digit_png):
    r = client.post("/reconstruct?format=json", files={"file": ("d.png", digit_png, "image/png")})
    assert r.status_code == 200
    ReconstructResponse.model_validate(r.json())


def test_the_seed_header_is_declared(schema):
    assert "X-Seed" in schema["paths"]["/sample"]["get"]["responses"]["200"]["headers"]


def test_get_routes_list_only_errors_they_can_give(schema):
    for path in ("/sample", "/model"):
        responses = set(schema["paths"][path]["get"]["responses"])
        assert not responses & {"400", "415"}, path
    assert "413" not in schema["paths"]["/model"]["get"]["responses"]


def test_examples_have_the_models_latent_size(schema):
    z = schema["components"]["schemas"]["DecodeRequest"]["properties"]["z"]["examples"][0]
    assert all(len(row) == LATENT for row in z)
    body = schema["paths"]["/interpolate"]["post"]["requestBody"]["content"]["application/json"]
    assert len(body["example"]["z_start"]) == LATENT


def test_interpolation_steps_are_a_query_parameter_only(schema):
    operation = schema["paths"]["/interpolate"]["post"]
    assert "steps" in {p["name"] for p in operation["parameters"]}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    for alternative in body.get("anyOf", [body]):
        model = alternative["$ref"].rsplit("/", 1)[-1] if "$ref" in alternative else None
        fields = body.get("$defs", {}).get(model, alternative).get("properties", {})
        assert "steps" not in fields


def test_the_api_key_scheme_guards_exactly_the_keyed_routes(make_client):
    keyed = make_client(api_key="s3cret")
    schema = keyed.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "the API key",
    }
    assert schemes["BearerToken"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method != "get" or "{" in path:
                continue
            open_route = keyed.get(path).status_code != 401
            assert ("security" in operation) != open_route, path
            if not open_route:  # either header will do
                assert operation["security"] == [{"APIKeyHeader": []}, {"BearerToken": []}]


def test_without_a_key_no_route_declares_security(schema):
    assert "securitySchemes" not in schema.get("components", {})
    for operations in schema["paths"].values():
        assert not any("security" in operation for operation in operations.values())
