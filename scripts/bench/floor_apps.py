"""The floor of the stack: what uvicorn alone, and FastAPI's routing, cost per request.

Both answer any request with a constant 8-byte JSON body and do no other work. Served like
vae-serve (httptools, no access log; --loop asyncio is vae-serve's default loop) and loaded
like the benchmark's encode28 workload, they bound what any service built on them can reach
on the same core:

    taskset -c 0 uvicorn scripts.bench.floor_apps:raw_asgi --port 8001 --no-access-log &
    taskset -c 0 uvicorn scripts.bench.floor_apps:fastapi_route --port 8002 --no-access-log &
    BENCH_METHOD=POST BENCH_BODY=<28x28.png> BENCH_HEADERS='Content-Type: image/png' \
    BENCH_PERCENTILES=50,99 BENCH_OUT=/tmp/floor.json \
      taskset -c 1 wrk -t1 -c32 -d5s -s scripts/bench/wrk.lua http://127.0.0.1:8001/encode
"""

from fastapi import FastAPI, Response
from starlette.types import Receive, Scope, Send

BODY = b'{"ok":1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI callable: uvicorn's own cost."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


fastapi_route = FastAPI()


@fastapi_route.post("/encode")
async def empty_route() -> Response:
    """An empty FastAPI route: routing and request handling, no parameters, no work."""
    return Response(BODY, media_type="application/json")
