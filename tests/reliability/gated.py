"""A model that waits for the test: every call holds the inference thread until released,
so requests queue behind it (tests/reliability/test_deadlines.py, test_abandon.py)."""

import asyncio
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app.inference import ModelService


def counted(name: str, **labels: str) -> float:
    """A sample of this process's metrics (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def gate(monkeypatch) -> threading.Event:
    """Every model call waits until the event is set (at most 30 s)."""
    opened = threading.Event()
    forward = ModelService.forward

    def gated_forward(self, op, x, *args):
        opened.wait(timeout=30)
        return forward(self, op, x, *args)

    monkeypatch.setattr(ModelService, "forward", gated_forward)
    yield opened
    opened.set()


async def until(condition, what: str, timeout: float = 10) -> None:
    """Wait, on the event loop, until condition() holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.005)


def infer_body(rows: int, side: int = 28, timeout_us: object = None) -> dict:
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": [rows, 1, side, side],
                "datatype": "FP32",
                "data": [0.5] * (rows * side * side),
            }
        ]
    }
    if timeout_us is not None:
        body["parameters"] = {"timeout": timeout_us}
    return body
