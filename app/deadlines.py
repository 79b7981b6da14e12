"""Per-request deadlines that count queue time.

A request's deadline is its arrival (when app.middleware saw its headers) plus its budget:

- the header `X-Envoy-Expected-Rq-Timeout-Ms` (milliseconds), on every route;
- on a /v2 infer, the request parameter `timeout` (microseconds, Triton's schedule-policy
  extension, which tritonclient's `infer(timeout=...)` sends), which takes precedence;
- else VAE_REQUEST_TIMEOUT_S (off by default). 0, like absent, means the server's default.

Why that header: it is the one a proxy already sends on HTTP/1.1 with exactly this meaning.
Envoy (and so Istio and the KServe stacks built on it) sets it on every request it forwards
under a route timeout: the time it will wait for the answer, per-try timeout included, in
milliseconds, "so that the upstream host can make decisions based on the request timeout,
e.g., early exit". Work it has stopped waiting for is wasted, and it needs no client change.
gRPC's `grpc-timeout` belongs to gRPC framing (units in the value, `50m`); no RFC defines
`Request-Timeout`; RFC 7240's `Prefer: wait=N` counts whole seconds. Without Envoy, a client
sends the header itself.

ModelService.run reads the deadline (a context variable of the request's task, set by the
`Model` dependency and the /v2 infer route): a request already late does no model work, and
one whose deadline passes while it is queued (or while its batch runs) leaves the batcher's
queue and is answered 504 `deadline_exceeded` at its deadline.
"""

import asyncio
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TypeVar

from fastapi import Request

from app.errors import APIError

HEADER = "X-Envoy-Expected-Rq-Timeout-Ms"
MAX_BUDGET = 2**63 - 1  # int64, as Envoy and Triton send it
T = TypeVar("T")

# the request's deadline in event-loop time (loop.time()), None: none
DEADLINE: ContextVar[float | None] = ContextVar("deadline", default=None)


OPENAPI_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_BUDGET},
    "description": "the request's time budget in milliseconds, from its arrival (Envoy sets "
    "it from its route timeout): past it, waiting for the model ends in 504 "
    "deadline_exceeded, without model work; 0 or absent: VAE_REQUEST_TIMEOUT_S",
}


def header_budget_ms(value: str | None) -> int | None:
    """The header's milliseconds (None when absent), or 422 naming the header."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and int(value) <= MAX_BUDGET):
        shown = value[:32] + ("..." if len(value) > 32 else "")
        raise APIError(
            422,
            "invalid_parameters",
            f"header {HEADER}: a whole number of milliseconds from 0 to 2^63-1, not {shown!r}",
        )
    return int(value)


def start(request: Request, budget_s: float | None) -> None:
    """The request's deadline: `budget_s` seconds after its arrival (None or 0: none)."""
    if not budget_s:
        DEADLINE.set(None)
        return
    arrived = request.scope.get("state", {}).get("arrived")  # time.perf_counter()
    elapsed = time.perf_counter() - arrived if arrived is not None else 0.0
    DEADLINE.set(asyncio.get_running_loop().time() - elapsed + budget_s)


def exceeded(deadline: float) -> APIError:
    late_ms = (asyncio.get_running_loop().time() - deadline) * 1000
    return APIError(
        504,
        "deadline_exceeded",
        f"the request's deadline passed {late_ms:.0f} ms ago, before the model could run it "
        f"(budget: {HEADER}, or /v2's timeout parameter)",
    )


def check(deadline: float | None) -> None:
    """504 now if the deadline has passed: no model work for a request already late."""
    if deadline is not None and asyncio.get_running_loop().time() >= deadline:
        raise exceeded(deadline)


async def within(call: Awaitable[T], deadline: float) -> T:
    """`call`'s result, or a 504 at `deadline`; cancelling `call` takes its request out of
    the batcher's queue (app.batching)."""
    timeout = asyncio.timeout_at(deadline)
    try:
        async with timeout:
            return await call
    except TimeoutError:
        if timeout.expired():
            raise exceeded(deadline) from None
        raise
