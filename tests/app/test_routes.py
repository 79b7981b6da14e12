"""app.routes: which routes skip FastAPI's dependency solver, and that they answer as
FastAPI's handler does (the other tests of the routes run through them)."""

import fastapi.routing
import pytest
from fastapi import Request

from app.dependencies import ready_model
from app.errors import APIError


@pytest.fixture
def solved(monkeypatch) -> list[str]:
    """The endpoints whose requests went through FastAPI's dependency solver."""
    calls: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def recording(*, dependant, **kwargs):
        calls.append(dependant.call.__name__)
        return await original(dependant=dependant, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", recording)
    return calls


def test_the_model_routes_of_an_open_service_are_direct(make_client, solved, digit_png):
    client = make_client()
    upload = {"content": digit_png, "headers": {"content-type": "image/png"}}
    assert client.get("/sample?n=1").status_code == 200
    assert client.post("/encode", **upload).status_code == 200
    assert client.post("/reconstruct", **upload).status_code == 200
    assert solved == []
    assert client.post("/decode", json={"z": [0.0] * 4}).status_code == 200
    assert solved == ["decode"]  # a JSON body: FastAPI's to validate


def test_a_keyed_service_keeps_the_solver_for_the_key(make_client, solved, digit_png):
    client = make_client(api_key="secret")
    assert client.get("/sample?n=1").status_code == 401
    response = client.get("/sample?n=1", headers={"X-API-Key": "secret"})
    assert response.status_code == 200
    upload = {"content": digit_png, "headers": {"content-type": "image/png"}}
    assert client.post("/encode", **upload).status_code == 401
    assert solved == ["sample", "sample", "encode"]


def test_dependency_overrides_go_through_the_solver(make_client):
    client = make_client()

    async def gone(request: Request):
        raise APIError(503, "not_ready", "overridden")

    client.app.dependency_overrides[ready_model] = gone
    try:
        response = client.get("/sample?n=1")
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 503
    assert response.json()["detail"] == "overridden"
    assert client.get("/sample?n=1").status_code == 200


def test_errors_keep_their_order_and_shape(make_client):
    client = make_client()
    client.app.state.ready = False  # the model's dependency runs before the query's
    response = client.get("/sample?n=1&bogus=1")
    assert response.status_code == 503
    client.app.state.ready = True
    response = client.get("/sample?n=1&bogus=1")
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_parameters",
        "detail": "query.bogus: Extra inputs are not permitted",
    }
