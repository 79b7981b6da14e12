"""Routes whose dependencies are called directly, not through FastAPI's dependency solver.

The model routes declare their dependencies the FastAPI way (`model: Model`,
`query: SampleParams`): OpenAPI, the API-key dependency and app.openapi read them from
there. On the open service those dependencies are plain `async def f(request)` callables,
and FastAPI's general solver (sub-dependencies, caches, scopes, exit stacks, telemetry
records, response-model serialisation) cost 8-13 % of the event loop's time per request
(py-spy, c = 32: 12.7 % of /sample?n=1, 10.1 % of /encode). A DirectRoute calls them itself
in declaration order, then the endpoint, whose Response is returned as it is.

A route is direct only where that is the whole of what FastAPI would do: the endpoint and
every dependency are coroutine functions taking at most the Request, with no
sub-dependency, and the route has no path, query, header, cookie or body parameter of its
own. Any other route (a JSON body; every keyed route when VAE_API_KEY is set, as the key's
dependency reads security headers) gets FastAPI's own handler, and so does every request
while app.dependency_overrides holds anything (tests).
"""

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def direct_calls(dependant: Dependant) -> list[tuple[str | None, Callable]] | None:
    """(parameter name, call) for each of the endpoint's dependencies, in order, when the
    route is direct (module docstring); else None."""
    own_params = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
    )
    if any(own_params) or not inspect.iscoroutinefunction(dependant.call):
        return None
    if dependant.response_param_name or dependant.background_tasks_param_name:
        return None
    calls = []
    for dependency in dependant.dependencies:
        if not simple(dependency):
            return None
        calls.append((dependency.name, dependency.call))
    return calls


def simple(dependency: Dependant) -> bool:
    """An `async def f(request)` (or `f()`) dependency, with nothing for FastAPI to solve."""
    call = dependency.call
    coroutine = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        type(call).__call__  # a callable instance (app.queries.QueryParser)
    )
    nothing_else = not (
        dependency.dependencies
        or dependency.path_params
        or dependency.query_params
        or dependency.header_params
        or dependency.cookie_params
        or dependency.body_params
        or dependency.response_param_name
        or dependency.background_tasks_param_name
        or dependency.security_scopes_param_name
        or dependency.websocket_param_name
        or dependency.http_connection_param_name
        or dependency.scope == "request"  # a yield dependency closed after the response
    )
    return coroutine and nothing_else and not inspect.isasyncgenfunction(call)


class DirectRoute(APIRoute):
    """An APIRoute that calls its dependencies and endpoint directly where it can."""

    def get_route_handler(self) -> Handler:
        fallback = super().get_route_handler()
        route = effective_route(self)
        calls = direct_calls(route.dependant)
        if calls is None:
            return fallback
        return direct_handler(route.dependant, calls, route.dependency_overrides_provider, fallback)


def effective_route(route: APIRoute) -> Any:
    """What FastAPI builds this route's handler from: for a route of an included router, its
    inclusion's context, whose dependant holds the router's dependencies (app.main's API
    key); FastAPI's own APIRoute.get_route_handler reads it from the same context variable.
    """
    context = fastapi_routing._effective_route_context_var.get()
    if context is not None and context.original_route is route:
        return context
    return route


def direct_handler(dependant: Dependant, calls: list, overrides: Any, fallback: Handler) -> Handler:
    endpoint, request_name = dependant.call, dependant.request_param_name
    wanted = [(name, call, takes_request(call)) for name, call in calls]

    async def handle(request: Request) -> Response:
        if overrides is not None and overrides.dependency_overrides:
            return await fallback(request)  # FastAPI's solver applies the overrides
        values = {}
        for name, call, with_request in wanted:
            value = await (call(request) if with_request else call())
            if name is not None:
                values[name] = value
        if request_name is not None:
            values[request_name] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):  # FastAPI would serialise it: not direct
            raise TypeError(f"{endpoint.__name__} must return a Response on a DirectRoute")
        return response

    return handle


def takes_request(call: Callable) -> bool:
    return len(inspect.signature(call).parameters) > 0
