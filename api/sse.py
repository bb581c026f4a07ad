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
from collections.abc import Awaitable, Callable

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
                 background: BackgroundTask | None = None) -> None:
        self.hub, self.sub = hub, sub
        self.after, self.first, self.replay, self.replay_batch = after, first, replay, replay_batch
        self.max_s, self.heartbeat_s = max_s, heartbeat_s
        self.status_code = 200
        self.background = background
        self.body = b""
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
            while True:
                left_s = ends_at - loop.time()
                if left_s <= 0:
                    break  # a bounded stream: the client reconnects with Last-Event-ID
                woken = await sub.wait(min(self.heartbeat_s, left_s))
                body, sent = sub.take(after=sent)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                elif not woken and loop.time() < ends_at:
                    await send({"type": "http.response.body", "body": PING_FRAME, "more_body": True})
                if sub.closed and not sub.frames:
                    break  # gone, or dropped for reading too slowly (its last frame said reconnect)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.hub.unsubscribe(sub)
        if self.background is not None:
            await self.background()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.sub.close()
                return
