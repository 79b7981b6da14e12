"""`vae-serve`: the settings that reach uvicorn."""

import pytest

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
