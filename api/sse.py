"""A Server-Sent Events response fed by a vacancy hub subscription (geo/vacancy/hub.py).

Written for many thousands of open streams per process: no task per event (the writer waits on its
subscription's future with a timer for the heartbeat), the frames buffered since the last write go out in one
``send``, the bytes are the ones the hub encoded once for every subscriber, and a disconnect is noticed by one
idle ``receive`` per stream. The stream ends after ``max_s`` (the client reconnects with ``Last-Event-ID``), when
the client goes away, or after the hub dropped the subscription for reading too slowly (its last frame is then
``event: reconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, cast

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from geo.vacancy.hub import Subscription, VacancyHub

RETRY_FRAME = b"retry: 2000\n\n"
PING_FRAME = b": ping\n\n"
Replay = Callable[[int], Awaitable[list[tuple[int, bytes]]]]


class EventStreamResponse(Response):
    """``text/event-stream`` of ``sub``: ``first`` (or the database ``replay``), then what the hub pushes."""

    media_type = "text/event-stream"

    def __init__(self, hub: VacancyHub, sub: Subscription, *, after: int | None, first: list[tuple[int, bytes]],
                 replay: Replay | None, replay_batch: int, max_s: float, heartbeat_s: float,
                 status_code: int = 200, background: BackgroundTask | None = None) -> None:
        self.hub, self.sub = hub, sub
        self.after, self.first, self.replay, self.replay_batch = after, first, replay, replay_batch
        self.max_s, self.heartbeat_s = max_s, heartbeat_s
        self.status_code = status_code  # a parameter with a default: FastAPI's OpenAPI reads it from here
        self.background = background
        self.body = b""
        self.pending: tuple[Coroutine[Any, Any, None], Any] | None = None  # a send begun by _deliver
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        # A stream has no length (Response.init_headers gives every body one).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.max_s
        sub = self.sub
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            sent = self.after if self.after is not None else 0
            chunks = [RETRY_FRAME]
            for seq, frame in self.first:
                sent = max(sent, seq)
                chunks.append(frame)
            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
            if self.replay is not None:
                while not sub.closed:
                    batch = await self.replay(sent)
                    if batch:
                        sent = batch[-1][0]
                        await send({"type": "http.response.body", "body": b"".join(f for _, f in batch),
                                    "more_body": True})
                    if len(batch) < self.replay_batch:
                        break
            sub.sent = sent
            sub.deliver = partial(self._deliver, send)
            while True:
                if self.pending is not None:
                    await self._finish_pending()
                left_s = ends_at - loop.time()
                if left_s <= 0:
                    break  # a bounded stream: the client reconnects with Last-Event-ID
                woken = await sub.wait(min(self.heartbeat_s, left_s))
                if self.pending is not None:
                    await self._finish_pending()
                body, sub.sent = sub.take(after=sub.sent)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                elif not woken and loop.time() < ends_at:
                    await send({"type": "http.response.body", "body": PING_FRAME, "more_body": True})
                if sub.closed and not sub.frames and self.pending is None:
                    break  # gone, or dropped for reading too slowly (its last frame said reconnect)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            sub.deliver = None
            if self.pending is not None:
                self.pending[0].close()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.hub.unsubscribe(sub)
        if self.background is not None:
            await self.background()

    def _deliver(self, send: Send, frame: bytes) -> bool:
        """Write ``frame`` now, from the hub's dispatch: drive ``send`` by hand while it does not need to wait
        (an ASGI server's send completes at once unless the socket is full); a send that must wait is left in
        ``pending`` for the writer task (False)."""
        coro = cast(Coroutine[Any, Any, None], send({"type": "http.response.body", "body": frame, "more_body": True}))
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        except Exception:  # a broken connection ends the stream, not the hub's dispatch
            self.sub.close()
            return True
        self.pending = (coro, yielded)
        return False

    async def _finish_pending(self) -> None:
        assert self.pending is not None
        coro, yielded = self.pending
        try:
            while True:
                if yielded is None:
                    await asyncio.sleep(0)
                else:
                    await yielded
                yielded = coro.send(None)
        except StopIteration:
            pass
        finally:
            self.pending = None

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.sub.close()
                return
