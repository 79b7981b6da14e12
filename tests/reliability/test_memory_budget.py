"""The memory budget (app/memory.py): bodies past VAE_MAX_INFLIGHT_BYTES are refused before
they are read, what was admitted completes, and the server's RSS stays bounded.

A real `vae-serve` with a small budget; slow uploads on raw sockets (scripts/slow_uploads.py:
`Expect: 100-continue`, all of the body but its last KiB, a pause, then the rest). Raw
image/png bodies: buffered in memory as they come (a multipart file over 1 MiB would be
spooled to /tmp, out of the RSS measured here).
"""

import json

import pytest
from PIL import Image

from app import imaging
from app.memory import MemoryBudget
from scripts.readiness import free_port, http_status, wait_ready
from scripts.slow_uploads import (
    metric,
    noise_png,
    reset_peak,
    rss,
    start_upload,
    unacknowledged,
)
from tests.helpers import ROOT, assert_error, wait_until
from tests.reliability.conftest import assert_encoding, encoded, start_server

BUDGET = 16 * 2**20
CLIENTS = 30
BODY_BYTES = 2 * 2**20  # about: 8 fit the budget, 22 do not


def test_the_budget_refuses_what_does_not_fit_and_lets_a_large_body_run_alone():
    budget = MemoryBudget(100)
    assert budget.reserve(60) and not budget.reserve(41) and budget.reserve(40)
    budget.release(100)
    assert budget.held == 0 and budget.reserve(500)  # nothing held: runs alone
    budget.force(10)
    assert budget.held == 510
    budget.release(510)
    assert budget.held == 0


def test_an_images_pixels_are_counted_from_its_header():
    rgb, grey = Image.new("RGB", (300, 200)), Image.new("L", (300, 200))
    assert imaging.decoded_bytes(encoded(rgb), 10**6) == 300 * 200 * 4 * 2  # Pillow: RGBX
    assert imaging.decoded_bytes(encoded(grey, "JPEG"), 10**6) == 300 * 200 * 2
    assert imaging.decoded_bytes(encoded(grey), 300 * 200 - 1) == 0  # refused before decoding
    assert imaging.decoded_bytes(b"not an image", 10**6) == 0


def test_every_request_gives_back_what_it_held(make_client):
    """Bodies (declared, chunked, refused, over the limit) and decoded images alike: the
    budget is empty after each; a body that does not fit gets the 503 before it is read."""
    client = make_client(max_inflight_bytes=2**20, max_upload_bytes=4 * 2**20)
    budget = client.app.state.memory_budget
    png = noise_png(300_000)  # decoded on a thread, its pixels counted
    raw = {"content-type": "image/png"}

    def post(content) -> int:
        status = client.post("/encode", content=content, headers=raw).status_code
        assert budget.held == 0
        return status

    assert post(png) == 200
    assert post(iter([png[:1000], png[1000:]])) == 200  # chunked: the 4 MiB limit, alone
    assert post(b"not an image") == 400
    assert post(b"x" * (4 * 2**20 + 1)) == 413
    assert budget.reserve(2**20 - 1000)  # another request's body
    response = client.post("/encode", content=png, headers=raw)
    budget.release(2**20 - 1000)
    assert_error(response, 503, "memory_budget")
    assert response.headers["retry-after"] == "1" and budget.held == 0


@pytest.mark.slow
def test_slow_uploads_past_the_budget_are_refused_and_the_admitted_answered(tiny_model_file):
    body = noise_png(BODY_BYTES)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "VAE_MODEL_PATH": str(tiny_model_file),
        "VAE_PORT": str(port),
        "VAE_WARMUP": "false",
        "VAE_ACCESS_LOG": "false",
        "VAE_MAX_INFLIGHT_BYTES": str(BUDGET),
    }
    server = start_server(env)
    try:
        wait_ready(url, server)
        ready = rss(server.pid)["VmRSS"]
        for upload in [start_upload(port, "/encode", body, 0, "image/png") for _ in range(2)]:
            upload.finish()
            assert upload.status == 200, upload.answer
        working_set = rss(server.pid)["VmHWM"] - ready  # one upload, decoded and encoded
        baseline = rss(server.pid)["VmRSS"]
        reset_peak(server.pid)
        uploads = [start_upload(port, "/encode", body, 1024, "image/png") for _ in range(CLIENTS)]
        admitted = [u for u in uploads if u.admitted]  # got 100 Continue
        refused = [u for u in uploads if not u.admitted]
        wait_until(
            lambda: all(unacknowledged(u.sock) == 0 for u in admitted), 60, "bodies received"
        )
        readyz = http_status(f"{url}/readyz")
        held = metric(port, "vae_inflight_bytes")
        for upload in uploads:
            upload.finish()
        peak = rss(server.pid)["VmHWM"]
        refusals = metric(port, 'vae_failures_total{reason="memory_budget"}')
    finally:
        server.terminate()
        server.communicate(timeout=30)
    fits = BUDGET // len(body)
    assert len(admitted) == fits and held == fits * len(body)
    assert readyz == 200
    assert refusals == len(refused) == CLIENTS - fits
    for upload in refused:
        assert upload.status == 503 and upload.headers["retry-after"] == "1"
        error = json.loads(upload.answer)
        assert set(error) == {"error", "detail"} and error["error"] == "memory_budget"
        assert "VAE_MAX_INFLIGHT_BYTES" in error["detail"] and str(ROOT) not in error["detail"]
    for upload in admitted:
        assert upload.status == 200, upload.answer
        assert_encoding(json.loads(upload.answer))
    mib = 2**-20
    print(
        f"\nRSS baseline {baseline * mib:.0f} MiB, peak {peak * mib:.0f} MiB; one upload's "
        f"working set {working_set * mib:.1f} MiB; budget {BUDGET * mib:.0f} MiB"
    )
    assert peak - baseline <= BUDGET + working_set
