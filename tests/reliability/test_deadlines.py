"""Deadlines that count queue time (app/deadlines.py), on a server backed up behind a model
call that holds the inference thread until the test releases it.

A request whose deadline passes while it waits gets 504 `deadline_exceeded` at its deadline
(REST: X-Envoy-Expected-Rq-Timeout-Ms; /v2: the `timeout` parameter, in the protocol's
shape), leaves the queue, and costs no model work; invalid budgets get a clear 4xx.
"""

import asyncio
import time

import pytest

from app.deadlines import HEADER
from app.inference import ModelService
from app.main import create_app
from tests.helpers import assert_error, time_bound
from tests.reliability import gated
from tests.reliability.conftest import run_async, running
from tests.reliability.gated import counted, infer_body, until

gate = gated.gate  # the fixture

BUDGET_MS = 50


async def timed(call) -> tuple:
    started = time.perf_counter()
    response = await call
    return response, time.perf_counter() - started


def test_a_deadline_passing_in_the_queue_gets_504_on_time_without_model_work(
    gate, settings_for, digit_png
):
    app = create_app(settings_for(warmup=False))

    async def scenario():
        async with running(app) as client:
            service: ModelService = app.state.model
            # the baseline: a request that does no model work, on this machine, now
            _, baseline_s = await timed(client.get("/model"))
            blocker = asyncio.create_task(client.get("/sample?n=4"))
            await until(lambda: service.outstanding == 1, "the blocking call admitted")
            encoded, decoded = (
                counted("vae_images_encoded_total"),
                counted("vae_images_decoded_total"),
            )
            headers = {HEADER: str(BUDGET_MS)}
            rest = await timed(client.get("/sample?n=8", headers=headers))  # behind the blocker
            png = {**headers, "Content-Type": "image/png"}
            encode = await timed(client.post("/encode", content=digit_png, headers=png))
            v2 = await timed(
                client.post(
                    "/v2/models/vae-encoder/infer", json=infer_body(2, timeout_us=BUDGET_MS * 1000)
                )
            )
            queued = [len(b.pending) for b in service.batchers.values()]
            still_waiting = service.outstanding
            gate.set()
            blocked = await blocker
            deltas = (
                counted("vae_images_encoded_total") - encoded,
                counted("vae_images_decoded_total") - decoded,
            )
            return baseline_s, rest, encode, v2, queued, still_waiting, blocked, deltas

    baseline_s, rest, encode, v2, queued, still_waiting, blocked, deltas = run_async(scenario())
    bound_s = BUDGET_MS / 1000 + time_bound(baseline_s, factor=20, slack_s=0.5)
    for response, seconds in (rest, encode):
        body = assert_error(response, 504, "deadline_exceeded")
        assert "deadline" in body["detail"]
        assert BUDGET_MS / 1000 <= seconds < bound_s, (seconds, bound_s)
    response, seconds = v2
    assert response.status_code == 504, response.text
    assert set(response.json()) == {"error"} and "deadline" in response.json()["error"]
    assert BUDGET_MS / 1000 <= seconds < bound_s, (seconds, bound_s)
    assert queued == [0] * len(queued) and still_waiting == 1  # withdrawn from the queues
    assert blocked.status_code == 200  # the blocker itself was unaffected
    assert deltas == (0, 4)  # no model work for the late ones: only the blocker's 4 rows


def test_the_server_default_applies_without_a_header(gate, settings_for):
    app = create_app(settings_for(warmup=False, request_timeout_s=BUDGET_MS / 1000))
    longer = {HEADER: "60000"}  # a header overrides the default

    async def scenario():
        async with running(app) as client:
            blocker = asyncio.create_task(client.get("/sample?n=1", headers=longer))
            await until(lambda: app.state.model.outstanding == 1, "the blocking call admitted")
            late = await timed(client.get("/sample?n=1"))
            gate.set()
            return late, await blocker

    (late, seconds), blocker = run_async(scenario())
    assert_error(late, 504, "deadline_exceeded")
    assert seconds >= BUDGET_MS / 1000
    assert blocker.status_code == 200


def test_a_deadline_not_reached_changes_nothing(settings_for):
    app = create_app(settings_for(warmup=False))

    async def scenario():
        async with running(app) as client:
            rest = await client.get("/sample?n=2&seed=1", headers={HEADER: "10000"})
            plain = await client.get("/sample?n=2&seed=1")
            zero = await client.get("/sample?n=2&seed=1", headers={HEADER: "0"})
            v2 = await client.post(
                "/v2/models/vae-encoder/infer", json=infer_body(1, timeout_us=10_000_000)
            )
            return rest, plain, zero, v2

    rest, plain, zero, v2 = run_async(scenario())
    assert rest.status_code == plain.status_code == zero.status_code == 200
    assert rest.content == plain.content == zero.content
    assert v2.status_code == 200, v2.text


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "", "9" * 30, "50ms"])
def test_an_invalid_header_gets_422_naming_it(client, value):
    response = client.get("/sample?n=1", headers={HEADER: value})
    body = assert_error(response, 422, "invalid_parameters")
    assert HEADER.lower() in body["detail"].lower()


@pytest.mark.parametrize("value", ["abc", -1, 1.5, True, 2**63, [50]])
def test_an_invalid_v2_timeout_gets_400_in_the_protocol_shape(client, value):
    response = client.post("/v2/models/vae-encoder/infer", json=infer_body(1, timeout_us=value))
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and "timeout" in response.json()["error"]


def test_the_header_is_documented_in_openapi(client):
    schema = client.get("/openapi.json").json()
    for path, method in (
        ("/sample", "get"),
        ("/encode", "post"),
        ("/v2/models/{model_name}/infer", "post"),
    ):
        parameters = schema["paths"][path][method]["parameters"]
        (header,) = [p for p in parameters if p["name"].lower() == HEADER.lower()]
        assert header["in"] == "header" and "504" in header["description"]
