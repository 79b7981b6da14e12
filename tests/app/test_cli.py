"""`vae-serve`: the settings that reach uvicorn."""

import signal

import pytest
import uvicorn

from app import cli


@pytest.mark.parametrize(("env", "loop"), [({}, "asyncio"), ({"VAE_LOOP": "uvloop"}, "uvloop")])
def test_the_event_loop_is_a_setting(monkeypatch, env, loop):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started = []
    monkeypatch.setattr(cli.Server, "run", lambda self: started.append(self.config))
    cli.main(["--port", "8123"])
    (config,) = started
    assert (config.loop, config.port, config.access_log) == (loop, 8123, False)
    assert config.http == "app.http:NoDelayHttpToolsProtocol"


def test_an_unknown_event_loop_is_refused(monkeypatch):
    monkeypatch.setenv("VAE_LOOP", "tokio")
    with pytest.raises(ValueError, match="loop"):
        cli.main([])


def test_a_drained_stop_exits_cleanly(monkeypatch):
    """uvicorn raises SIGTERM again after draining, to the handler from before it ran: the
    server ignores it there (no exit 143), then puts the caller's handler back."""
    raised = []

    def serve_then_reraise(self, sockets=None) -> None:
        raised.append(signal.getsignal(signal.SIGTERM))
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(uvicorn.Server, "run", serve_then_reraise)
    before = signal.getsignal(signal.SIGTERM)
    cli.Server(uvicorn.Config("app.main:app")).run()
    assert raised == [signal.SIG_IGN]
    assert signal.getsignal(signal.SIGTERM) == before
