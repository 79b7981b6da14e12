"""Abandoned requests: the work of a client that has gone is dropped.

Once a request's body has been read, the only message its ASGI `receive` can still give is
`http.disconnect`: the client closed its connection (or, in uvicorn, the response is
complete). A watcher task awaits it, event-driven (Starlette's `request.is_disconnected()`
polls), from WATCH_AFTER_S after the request's arrival (or once its body is read, if
later), and if no response has started it cancels the request's task: a request queued for
the model leaves the batcher's queue (app.batching), one in a running batch has its rows
dropped, and the post-processing (PNG, JSON) never runs. app.middleware then records status
499 (nginx's "client closed the request") and counts vae_failures_total{reason="abandoned"}.
A client gone while still sending its body is abandoned the same way.
"""

import asyncio

from starlette.types import Message, Receive

from app import metrics

ABANDONED = metrics.FAILURES.labels("abandoned")
STATUS = 499


# A request is watched from this long after its arrival: one done sooner never pays for a
# watcher task (a task per request cost 4-5 % of /sample?n=1 throughput at c=32,
# scripts/bench/side_by_side.sh), and a client gone sooner costs at most this much work.
WATCH_AFTER_S = 0.05


def has_body(headers: dict[bytes, bytes]) -> bool:
    """HTTP/1.1: a request has a body only with a non-zero Content-Length or chunked."""
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


class DisconnectWatcher:
    """Wraps one request's `receive`; `receive` is what the app gets instead."""

    __slots__ = (
        "raw",
        "source",
        "task",
        "watcher",
        "timer",
        "held",
        "body_read",
        "due",
        "responded",
        "abandoned",
    )

    def __init__(self, receive: Receive, source: Receive, body: bool) -> None:
        self.raw = receive  # what the app reads the body through (the middleware's limits)
        self.source = source  # the server's own: the watcher reads it directly
        self.task = asyncio.current_task()  # the request's
        self.watcher: asyncio.Task | None = None
        self.timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self.fire)
        self.held: Message | None = None  # a bodiless request's message, read for the app
        self.body_read = False  # the request's last http.request message has been read
        self.due = not body  # watch when the timer fires (later, once a body is read)
        self.responded = False  # set by the middleware once the response has started
        self.abandoned = False

    def fire(self) -> None:
        self.timer = None
        if self.due or self.body_read:
            self.watch()
        else:
            self.due = True  # the app is still reading the body: watch once it has

    async def receive(self) -> Message:
        if self.held is not None:
            message, self.held = self.held, None
            return message
        if self.watcher is not None and self.body_read:  # only a disconnect can come now
            return await asyncio.shield(self.watcher)
        message = await self.raw()
        if message["type"] == "http.disconnect" and not self.responded:  # gone before an answer
            self.abandon()
            await asyncio.sleep(0)  # the cancellation lands here
        elif not message.get("more_body", False):
            self.body_read = True
            if self.due and self.timer is None and self.watcher is None:
                self.watch()
        return message

    def watch(self) -> None:
        self.watcher = asyncio.get_running_loop().create_task(self.wait_for_disconnect())

    async def wait_for_disconnect(self) -> Message:
        if not self.body_read:  # a bodiless request whose app has not read its message
            self.held = await self.source()  # (returns at once: the message is complete)
            self.body_read = True
        message = await self.source()
        if message["type"] == "http.disconnect" and not self.responded:
            self.abandon()
        return message

    def abandon(self) -> None:
        self.abandoned = True
        self.task.cancel()

    def settle(self) -> int:
        """The request's task caught the watcher's cancellation: undo it (the task goes on to
        record the request), count it; the status to record."""
        self.task.uncancel()
        ABANDONED.inc()
        return STATUS

    def stop(self) -> None:
        """At the end of the request. The watcher ends by itself once the response is
        complete (receive answers http.disconnect); it is cancelled only when none was."""
        if self.timer is not None:
            self.timer.cancel()
        if self.watcher is not None and not self.watcher.done() and not self.responded:
            self.watcher.cancel()
