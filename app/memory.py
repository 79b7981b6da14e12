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

import asyncio
import ctypes
import logging
import threading
import time

from starlette.exceptions import HTTPException

from app import metrics
from app.errors import APIError

RETRY_AFTER_S = "1"
TRIM_AFTER_BYTES = 2**20  # a request that held this much is followed by a trim
TRIM_EVERY_S = 1.0
log = logging.getLogger("app.memory")
try:  # glibc's; None elsewhere (musl, macOS), where nothing is trimmed
    malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    malloc_trim = None


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


class Trimmer:
    """Gives the heap's free pages back to the OS (glibc's malloc_trim) once large bodies
    are no longer in flight, at most once every TRIM_EVERY_S, on a thread.

    Without it RSS stayed at its peak after a burst: 60 raw uploads of 9 MB left a server
    at 855 MiB from a baseline of 359 (scripts/slow_uploads.py --raw): a body arrives in
    pieces of 64 KB to 1 MB, under glibc's mmap threshold once it has risen, so they come
    from the heap, which keeps freed pages. With it: 343 MiB. A trim of that heap took
    90-97 ms: on a thread (ctypes lets the GIL go; GET /healthz's slowest answer after a
    burst was 77-153 ms with it, 65-140 ms without), and not while large bodies keep
    coming, whose memory would be taken again at once.
    """

    def __init__(self) -> None:
        self.last = 0.0
        self.pending: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        if malloc_trim is None or self.pending is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.last + TRIM_EVERY_S - loop.time())
        self.pending = loop.call_later(delay, self.trim, loop)

    def trim(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pending, self.last = None, loop.time()
        loop.run_in_executor(None, trim_heap)


def trim_heap() -> None:
    started = time.perf_counter()
    malloc_trim(0)
    log.debug("malloc_trim took %.2f ms", (time.perf_counter() - started) * 1000)
