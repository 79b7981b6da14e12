"""The memory budget: bytes of request bodies and decoded images held at once, across all
the requests of this process (VAE_MAX_INFLIGHT_BYTES; docs/deploy.md says how it is sized).

Each body is buffered whole (app.media), and nothing else bounded their sum: 60 uploads of
9 MB held open before their last byte took a server from 364 to 1,281 MiB of RSS, so ~130
would have had a 2 GiB container OOM-killed. A body is reserved from its Content-Length (or
the body limit, when the length is not declared) when the route first reads it, before a
byte is read; past the budget it is refused 503 `memory_budget` with Retry-After, which a
client sending `Expect: 100-continue` (curl does, over 1 MB) gets before sending its body.
Refused rather than paused: a paused body still holds its connection and what the server
already buffered of it, and its client cannot tell it to go to another replica.

An image's pixel buffers are reserved from its header (width x height x bytes per pixel)
before it is decoded. They are counted but never refused: their request was admitted with
its body, and VAE_DECODE_THREADS bounds how many decode at once.
"""

import threading

from starlette.exceptions import HTTPException

from app import metrics
from app.errors import APIError

RETRY_AFTER_S = "1"


class BudgetExceeded(HTTPException):
    """A body refused by the budget, raised from the middleware's receive when the route
    first reads it (an HTTPException, as app.limits.BodyTooLarge, so that FastAPI's body
    parsing lets it through); app.errors answers it with its code and Retry-After."""

    def __init__(self, wanted: int, budget: "MemoryBudget") -> None:
        detail = (
            f"{wanted} more bytes would take the requests in flight over the memory budget "
            f"({budget.held} of {budget.capacity} bytes held, VAE_MAX_INFLIGHT_BYTES): "
            "retry later or elsewhere"
        )
        error = APIError(503, "memory_budget", detail, {"Retry-After": RETRY_AFTER_S})
        super().__init__(error.status, error.detail, error.headers)
        self.code = error.code


class MemoryBudget:
    """Bytes held against a capacity; reserve and release never wait. Thread-safe: bodies
    are reserved on the event loop, decoded images on the decode threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self.lock = threading.Lock()

    def reserve(self, n: int) -> bool:
        """Hold n bytes if they fit; False if they do not (nothing is held then). When
        nothing is held, any n fits: a body larger than the whole budget runs alone."""
        with self.lock:
            if self.held and self.held + n > self.capacity:
                return False
            self.held += n
            metrics.INFLIGHT_BYTES.set(self.held)
        return True

    def force(self, n: int) -> None:
        """Hold n bytes even past the capacity: the work of a request already admitted."""
        with self.lock:
            self.held += n
            metrics.INFLIGHT_BYTES.set(self.held)

    def release(self, n: int) -> None:
        with self.lock:
            self.held -= n
            metrics.INFLIGHT_BYTES.set(self.held)
