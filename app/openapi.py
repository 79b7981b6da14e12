"""The OpenAPI schema: FastAPI's, generated from the routes and pydantic models, plus the query
parameters of app.queries' models (validated by a dependency, which FastAPI cannot see
through), the deadline header (read by the model's dependency, app.deadlines) and what
only the running service knows: examples sized to the loaded model's latent dimension D.
(FastAPI declares the API-key schemes itself, on the routes app.main keys when a key is set.)
"""

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from app.deadlines import OPENAPI_PARAMETER
from app.dependencies import ready_model
from app.queries import QueryParser

EXAMPLE_Z = (0.5, -1.0, 0.2, 0.0)  # repeated to D values


def dependencies(route: APIRoute) -> list:
    """Every dependency of the route, nested ones too."""
    found, pending = [], list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        found.append(dependant)
        pending.extend(dependant.dependencies)
    return found


def query_parameters(route: APIRoute) -> list[dict]:
    """The fields of the route's query models, as optional query parameters."""
    parameters = []
    for dependant in dependencies(route):
        if isinstance(dependant.call, QueryParser):
            schema = dependant.call.model.model_json_schema()
            for name, field in schema["properties"].items():
                description = (
                    {"description": field["description"]} if "description" in field else {}
                )
                parameters.append(
                    {"name": name, "in": "query", "required": False, "schema": field} | description
                )
    return parameters


MODEL_WORK_TAGS = {"images in", "images out"}  # the REST routes that run the model


def header_parameters(route: APIRoute, operation: dict) -> list[dict]:
    """The deadline header (app.deadlines, read by the model's dependency) on the routes
    that queue model work (REST's images in and out, /v2 infer), with the 422 of a bad
    value and the 504 of a deadline passed, in the route's own error shape (its 503's)."""
    runs_model = MODEL_WORK_TAGS & set(route.tags) or route.path.endswith("/infer")
    if not runs_model or not any(d.call is ready_model for d in dependencies(route)):
        return []
    responses = operation["responses"]
    error = responses["503"]
    responses.setdefault("422", {**error, "description": "invalid parameters (or header)"})
    deadline = "the request's deadline passed before the model could run it"
    responses.setdefault("504", {**error, "description": deadline})
    return [OPENAPI_PARAMETER]


def latent_examples(schema: dict, latent_dim: int) -> None:
    """Examples of /decode and /interpolate bodies with D values per vector."""
    z = [EXAMPLE_Z[i % len(EXAMPLE_Z)] for i in range(latent_dim)]
    models = schema.get("components", {}).get("schemas", {})
    if "DecodeRequest" in models:
        models["DecodeRequest"]["properties"]["z"]["examples"] = [[[0.0] * latent_dim, z]]
    interpolate = schema["paths"].get("/interpolate", {}).get("post", {})
    body = interpolate.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["example"] = {"z_start": [-1.0] * latent_dim, "z_end": [1.0] * latent_dim}


def openapi_schema(app: FastAPI) -> dict:
    """Built once the model is loaded (its D is in the examples), then cached."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    for context in iter_route_contexts(app.routes):  # included routers' routes too
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        for method in context.methods or ():
            operation = schema["paths"].get(context.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if parameters := query_parameters(route) + header_parameters(route, operation):
                operation["parameters"] = [*operation.get("parameters", []), *parameters]
    model = app.state.model
    if model is None:
        return schema  # not cached: the examples wait for the model's D
    latent_examples(schema, model.latent_dim)
    app.openapi_schema = schema
    return schema
