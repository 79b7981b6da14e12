"""503 answers are retried, honouring Retry-After but bounded; other failures are mapped to
clear exceptions. A fake transport (httpx.MockTransport) plays the service."""

import email.utils
import time
from collections.abc import Callable

import httpx
import pytest

from vae_client import VAEClient, VAEConnectionError, VAEServiceError
from vae_client import api as client_api
from vae_client.calls import retry_after

MODEL = {"version": "1", "latent_dim": 2, "device": "cpu", "batching": False, "card": {}}
OVERLOADED = {"error": "overloaded", "detail": "too many requests in flight"}


def fake_service(answers: list[httpx.Response]) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose requests get `answers` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://fake"), seen


def busy(retry_after_header: str | None) -> httpx.Response:
    headers = {} if retry_after_header is None else {"Retry-After": retry_after_header}
    return httpx.Response(503, json=OVERLOADED, headers=headers)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Waits the client asked for, without waiting."""
    waited: list[float] = []
    monkeypatch.setattr(client_api.time, "sleep", waited.append)
    return waited


def test_503_is_retried_after_retry_after_seconds(sleeps: list[float]) -> None:
    http, seen = fake_service([busy("2"), busy("1.5"), httpx.Response(200, json=MODEL)])
    info = VAEClient(http=http, retries=3).model_info()
    assert info.latent_dim == 2
    assert len(seen) == 3 and sleeps == [2.0, 1.5]


def test_retries_are_bounded_in_number_and_wait(sleeps: list[float]) -> None:
    http, seen = fake_service([busy("100")])
    with pytest.raises(VAEServiceError) as caught:
        VAEClient(http=http, retries=2, max_retry_wait=5).sample(3)
    assert (caught.value.status, caught.value.code) == (503, "overloaded")
    assert len(seen) == 3 and sleeps == [5.0, 5.0]


def test_without_retry_after_the_wait_backs_off(sleeps: list[float]) -> None:
    http, _ = fake_service([busy(None)])
    with pytest.raises(VAEServiceError):
        VAEClient(http=http, retries=3).model_info()
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_zero_means_one_attempt(sleeps: list[float]) -> None:
    http, seen = fake_service([busy("1")])
    with pytest.raises(VAEServiceError):
        VAEClient(http=http, retries=0).model_info()
    assert len(seen) == 1 and sleeps == []


def test_ready_reports_503_without_retrying(sleeps: list[float]) -> None:
    http, seen = fake_service([httpx.Response(503, json={"status": "not_ready"})])
    assert VAEClient(http=http).ready() is False
    assert len(seen) == 1 and sleeps == []


def test_other_errors_are_not_retried(sleeps: list[float]) -> None:
    failure = httpx.Response(500, json={"error": "internal_error", "detail": "x"})
    http, seen = fake_service([failure])
    with pytest.raises(VAEServiceError) as caught:
        VAEClient(http=http).model_info()
    assert caught.value.code == "internal_error" and len(seen) == 1 and sleeps == []


def test_a_body_that_is_not_the_error_shape_still_gives_a_clear_error() -> None:
    http, _ = fake_service([httpx.Response(502, text="<html>Bad Gateway</html>")])
    with pytest.raises(VAEServiceError) as caught:
        VAEClient(http=http).model_info()
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert "Bad Gateway" in caught.value.detail


def test_the_api_key_is_sent_on_every_attempt(sleeps: list[float]) -> None:
    http, seen = fake_service([busy("0"), httpx.Response(200, json=MODEL)])
    VAEClient(api_key="k", http=http).model_info()
    assert [r.headers.get("X-API-Key") for r in seen] == ["k", "k"]


def test_an_unreachable_service_raises_a_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://down:1")
    with pytest.raises(VAEConnectionError, match="http://down:1"):
        VAEClient(http=http).sample()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.25", 0.25),
        ("-4", 0.0),
        (None, None),
        ("soon", None),
        ("nan", None),
        (lambda: email.utils.formatdate(time.time() + 30, usegmt=True), 30.0),
    ],
)
def test_retry_after_parsing(value: str | Callable[[], str] | None, expected) -> None:
    seconds = retry_after(value() if callable(value) else value)
    assert seconds == (None if expected is None else pytest.approx(expected, abs=1.5))
