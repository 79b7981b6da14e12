"""Abandoned requests (app/disconnects.py): the work of a client that has gone is dropped.

In process, over ASGI: a request queued behind a model call that holds the inference thread
gets `http.disconnect`; it leaves the batcher's queue, sends nothing, is recorded as 499
and counted, and the model never runs its rows (REST, /v2, /score with a large k). Then a
real `vae-serve` (model calls slowed) and raw sockets closed while their requests wait.
"""

import asyncio
import json
import socket

import httpx
import pytest

from app.main import create_app
from scripts.abandon import metrics
from tests.helpers import free_port, wait_ready, wait_until
from tests.reliability import gated
from tests.reliability.conftest import run_async, running, start_server
from tests.reliability.gated import counted, infer_body, until

gate = gated.gate  # the fixture

ABANDONED = 'vae_failures_total{reason="abandoned"}'


def http_scope(method: str, path: str, query: bytes, headers: list) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }


async def call_then_leave(app, method: str, path: str, query=b"", body=b"", headers=()):
    """Start one request over ASGI; returns its task, the event that disconnects its
    client, and the messages the app sent it."""
    gone, sent = asyncio.Event(), []
    headers = [(k.lower().encode(), v.encode()) for k, v in headers]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = http_scope(method, path, query, headers)
    return asyncio.create_task(app(scope, receive, send)), gone, sent


CASES = {
    "rest sample": ("GET", "/sample", b"n=8", b"", ()),
    "rest encode": ("POST", "/encode", b"", "png", (("Content-Type", "image/png"),)),
    "rest score, k=1000": ("POST", "/score", b"k=1000", "png", (("Content-Type", "image/png"),)),
    "v2 decoder": ("POST", "/v2/models/vae-decoder/infer", b"", "z", ()),
    "v2 encoder": ("POST", "/v2/models/vae-encoder/infer", b"", "image", ()),
}


def request_body(kind, digit_png: bytes) -> bytes:
    if kind == "png":
        return digit_png
    if kind == "z":
        tensor = {"name": "z", "shape": [3, 4], "datatype": "FP32", "data": [0.1] * 12}
        return json.dumps({"inputs": [tensor]}).encode()
    if kind == "image":
        return json.dumps(infer_body(3)).encode()
    return kind


@pytest.mark.parametrize("case", CASES)
def test_a_queued_request_whose_client_leaves_is_dropped(
    gate, settings_for, tiny_heads_model_file, digit_png, case
):
    method, path, query, kind, headers = CASES[case]
    if kind in ("z", "image"):
        headers = (("Content-Type", "application/json"),)
    body = request_body(kind, digit_png)
    app = create_app(settings_for(model_path=tiny_heads_model_file, warmup=False))

    async def scenario():
        async with running(app) as client:
            service = app.state.model
            blocker = asyncio.create_task(client.get("/sample?n=2"))
            await until(lambda: service.outstanding == 1, "the blocking call admitted")
            before = {
                "encoded": counted("vae_images_encoded_total"),
                "decoded": counted("vae_images_decoded_total"),
                "abandoned": counted("vae_failures_total", reason="abandoned"),
            }
            task, gone, sent = await call_then_leave(app, method, path, query, body, headers)
            await until(lambda: service.outstanding == 2, "the request queued")
            gone.set()
            await asyncio.wait_for(task, 10)
            left = service.outstanding, [len(b.pending) for b in service.batchers.values()]
            gate.set()
            assert (await blocker).status_code == 200
            after = {
                "encoded": counted("vae_images_encoded_total"),
                "decoded": counted("vae_images_decoded_total"),
                "abandoned": counted("vae_failures_total", reason="abandoned"),
            }
            return sent, left, {k: after[k] - before[k] for k in before}

    v2 = path.startswith("/v2")
    labels = {
        "route": "/v2/models/{model_name}/infer" if v2 else path,
        "method": method,
        "status": "499",
        "protocol": "v2" if v2 else "rest",
    }
    answered_499 = counted("vae_http_requests_total", **labels)
    sent, (outstanding, queued), deltas = run_async(scenario())
    assert sent == []  # nothing sent to a client that has gone
    assert outstanding == 1 and set(queued) <= {0}  # out of the queue before its batch
    assert deltas == {"encoded": 0, "decoded": 2, "abandoned": 1}  # the blocker's rows only
    assert counted("vae_http_requests_total", **labels) - answered_499 == 1  # its access line


def test_a_client_gone_while_its_batch_runs_gets_no_postprocessing(gate, settings_for):
    """The batch runs to its end; the gone client's rows are dropped, nothing is encoded
    to PNG for it or sent."""
    app = create_app(settings_for(warmup=False))

    async def scenario():
        async with running(app):
            service = app.state.model
            task, gone, sent = await call_then_leave(app, "GET", "/sample", b"n=3")
            await until(lambda: service.outstanding == 1, "the request running")
            decoded = counted("vae_images_decoded_total")
            gone.set()
            await asyncio.wait_for(task, 10)
            gate.set()
            await until(lambda: counted("vae_images_decoded_total") == decoded + 3, "batch done")
            return sent

    assert run_async(scenario()) == []


REQUESTS = 20
ROWS = 256


@pytest.mark.slow
def test_clients_that_close_their_sockets_cost_at_most_a_tenth_of_the_work(tiny_model_file):
    """A real vae-serve, every model call slowed to 0.2 s; REQUESTS x /sample?n=256 sent on
    raw sockets, closed once all wait for the model. At most a tenth of their rows are
    decoded, every one is counted as abandoned and logged with status 499, and the server
    stays ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "VAE_MODEL_PATH": str(tiny_model_file),
        "VAE_PORT": str(port),
        "VAE_WARMUP": "false",
        "VAE_LOG_FORMAT": "json",
        "VAE_ACCESS_LOG_FLUSH_MS": "0",
        "VAE_TEST_MODEL_DELAY_S": "0.2",
    }
    server = start_server(env, module="tests.reliability.slow_server")
    try:
        wait_ready(url, server)
        before = metrics(url)
        sockets = []
        for _ in range(REQUESTS):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET /sample?n={ROWS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sockets.append(s)
        wait_until(lambda: metrics(url)["vae_queue_depth"] == REQUESTS, 30, "every request queued")
        for s in sockets:
            s.close()
        wait_until(
            lambda: (
                metrics(url).get(ABANDONED, 0) - before.get(ABANDONED, 0) == REQUESTS
                and metrics(url)["vae_queue_depth"] == 0
            ),
            30,
            "every request abandoned",
        )
        after = metrics(url)
        ready = httpx.get(f"{url}/readyz", timeout=10).status_code
        served = httpx.get(f"{url}/sample?n=2", timeout=10).status_code
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    decoded = after["vae_images_decoded_total"] - before["vae_images_decoded_total"]
    assert decoded <= 0.1 * REQUESTS * ROWS, decoded
    assert ready == 200 and served == 200
    access = [json.loads(line) for line in stderr.splitlines() if '"app.access"' in line]
    gone = [entry for entry in access if entry["status"] == 499]
    assert len(gone) == REQUESTS and all(e["route"] == "/sample" for e in gone)
    print(f"\n{REQUESTS} x /sample?n={ROWS} abandoned: {decoded:.0f} rows decoded")
