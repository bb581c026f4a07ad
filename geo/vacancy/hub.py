"""Fan-out of vacancy events inside one process: one LISTEN connection per process, many subscribers.

Every API worker process has its own hub; PostgreSQL delivers each ``NOTIFY dolbom_vacancy`` to all of
them, so a report written through any worker reaches the streams of every worker. The notification carries
the whole event (a few hundred bytes, well under the 8 kB NOTIFY limit); when the LISTEN connection drops,
the hub reconnects and fills the gap from ``vacancy_events``. No web framework here: ``api/routers/vacancy.py``
turns subscriptions into Server-Sent Events.

The fan-out is built for ten thousand open maps per host (benchmarks/README.md, ``bench_vacancy``):

- each event is encoded once per process (``sse_frame_bytes``); every stream writes the same bytes;
- subscriptions are grouped by their filter, so a filter is evaluated once per event and distinct filter,
  not once per subscriber (ten thousand maps of one city share a handful of filters);
- a subscription's buffer is bounded (``BUFFER_EVENTS``): a client that falls that far behind is dropped
  with a final ``event: reconnect`` frame and reconnects with ``Last-Event-ID``;
- the hub keeps the last ``RING_EVENTS`` events, so such a reconnect resumes from memory
  (``events_since``) instead of the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg

from geo.db import as_libpq_url
from geo.vacancy.reports import NOTIFY_CHANNEL, EventFilter

log = logging.getLogger(__name__)
BUFFER_EVENTS = 256  # frames a subscription may hold unsent before it is dropped (told to reconnect)
RING_EVENTS = 2048  # recent events kept in memory for Last-Event-ID resumes
RECONNECT_FRAME = b"event: reconnect\ndata: {\"reason\": \"slow consumer\"}\n\n"
DROPPED_SEQ = 2**63  # sorts after every event: the reconnect frame is never skipped as already sent


def sse_frame(event: dict[str, Any]) -> str:
    """The Server-Sent Events frame of an event: ``id`` = seq, ``event: vacancy``, JSON ``data``."""
    data = {k: v for k, v in event.items() if not k.startswith("_")}
    return f"id: {event['seq']}\nevent: vacancy\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse_frame_bytes(event: dict[str, Any]) -> bytes:
    """``sse_frame`` encoded as UTF-8 (what every stream writes)."""
    return sse_frame(event).encode()


class Subscription:
    """One stream: its filter and a bounded buffer of frames not yet written.

    ``push`` is called by the hub for every matching event; the stream's writer waits with ``wait`` and takes
    everything buffered with ``take``. When ``BUFFER_EVENTS`` frames are waiting (the client reads too slowly)
    the buffer is replaced by one ``event: reconnect`` frame and ``dropped`` is set: the writer sends it and
    ends the response; the client comes back with ``Last-Event-ID``.

    A stream may install ``deliver``: while its writer is idle (waiting, nothing buffered) the hub then writes
    the frame through it in the same loop iteration instead of waking the writer's task (at 10,000 streams the
    task switches were a fifth of the fan-out's time). ``deliver(frame)`` returns False when it could not finish
    the write (the socket is full) and left it for the writer, which the hub then wakes.
    """

    __slots__ = ("filter", "frames", "dropped", "closed", "last_seq", "sent", "deliver", "_waiter", "limit")

    def __init__(self, flt: EventFilter, *, limit: int = BUFFER_EVENTS) -> None:
        self.filter = flt
        self.frames: list[tuple[int, bytes]] = []
        self.dropped = False
        self.closed = False
        self.last_seq = 0  # the newest seq pushed
        self.sent = 0  # the newest seq written to the client (frames at or below it are replayed duplicates)
        self.deliver: Callable[[bytes], bool] | None = None
        self.limit = limit
        self._waiter: asyncio.Future[None] | None = None

    def push(self, seq: int, frame: bytes) -> bool:
        """Buffer ``frame``; False when the subscription is (now) dropped."""
        if self.dropped or self.closed:
            return False
        self.last_seq = seq
        if self.deliver is not None and self._waiter is not None and not self.frames:
            if seq > self.sent:
                self.sent = seq
                if not self.deliver(frame):
                    self._wake()
            return True
        if len(self.frames) >= self.limit:
            self.frames = [(DROPPED_SEQ, RECONNECT_FRAME)]
            self.dropped = True
        else:
            self.frames.append((seq, frame))
        self._wake()
        return not self.dropped

    def close(self) -> None:
        """The client went away: wake the writer so it ends."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            # Not waiting any more from here on: later pushes buffer instead of delivering (no write overtakes
            # one the writer is about to finish).
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def take(self, *, after: int) -> tuple[bytes, int]:
        """Everything buffered with a seq above ``after`` as one write (empty when nothing is), and the newest
        seq taken (``after`` when none): a stream that replayed first skips what it already sent."""
        frames, self.frames = self.frames, []
        if len(frames) == 1 and frames[0][0] > after:
            return frames[0][1], frames[0][0]
        kept = [(seq, frame) for seq, frame in frames if seq > after]
        if not kept:
            return b"", after
        return b"".join(frame for _, frame in kept), kept[-1][0]

    async def wait(self, timeout_s: float) -> bool:
        """Until a frame is buffered or the subscription is closed (True), or ``timeout_s`` passed (False)."""
        if self.frames or self.closed:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        # A timer instead of asyncio.wait_for: no task per wait (the profile's second cost at 1,000 streams).
        timer = loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self.frames) or self.closed


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class VacancyHub:
    """LISTEN once, fan out to subscriptions; started lazily by the first subscriber."""

    def __init__(self, dsn: str, *, reconnect_delay_s: float = 1.0, ring_events: int = RING_EVENTS) -> None:
        self.dsn = as_libpq_url(dsn)
        self.reconnect_delay_s = reconnect_delay_s
        self.groups: dict[EventFilter, set[Subscription]] = {}
        self.last_seq = 0
        # Recent (seq, event, frame); ``ring_floor``: every event with seq > floor is in the ring.
        self.ring: deque[tuple[int, dict[str, Any], bytes]] = deque(maxlen=ring_events)
        self.ring_floor: int | None = None
        self.dropped = 0  # subscriptions dropped for falling behind (since start)
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    @property
    def subscriptions(self) -> set[Subscription]:
        """Every live subscription."""
        return {sub for subs in self.groups.values() for sub in subs}

    async def subscribe(self, flt: EventFilter, *, limit: int = BUFFER_EVENTS) -> Subscription:
        """Register a subscription; returns once the hub is listening (so no later event is missed)."""
        sub = Subscription(flt, limit=limit)
        self.groups.setdefault(flt, set()).add(sub)
        await self._ensure_started()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription."""
        sub.closed = True
        group = self.groups.get(sub.filter)
        if group is not None:
            group.discard(sub)
            if not group:
                del self.groups[sub.filter]

    def events_since(self, after_seq: int) -> list[tuple[int, dict[str, Any], bytes]] | None:
        """The events after ``after_seq`` from memory, or None when the ring does not reach back that far."""
        if self.ring_floor is None or after_seq < self.ring_floor:
            return None
        return [item for item in self.ring if item[0] > after_seq]

    async def start(self) -> None:
        """Listen now (without a subscriber); returns once listening."""
        await self._ensure_started()

    async def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="vacancy-hub")
        assert self._ready is not None
        await self._ready.wait()

    def dispatch(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every matching subscription (in-process; drops a subscription that overflows)."""
        seq = int(event["seq"])
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        frame = sse_frame_bytes(event)  # encoded once for every subscriber
        if len(self.ring) == self.ring.maxlen:
            self.ring_floor = self.ring[0][0]
        self.ring.append((seq, event, frame))
        for flt, subs in list(self.groups.items()):
            if not flt.matches(event):
                continue
            for sub in list(subs):
                if not sub.push(seq, frame):
                    self.dropped += 1
                    self.unsubscribe(sub)

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if first:
                        cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM vacancy_events")
                        row = await cur.fetchone()
                        self.last_seq = max(self.last_seq, int(row[0]) if row else 0)
                        self.ring_floor = self.last_seq
                        first = False
                    else:
                        # Reconnected: publish what was committed while the connection was down.
                        cur = await conn.execute(
                            "SELECT seq, payload FROM vacancy_events WHERE seq > %s ORDER BY seq", (self.last_seq,))
                        for seq, payload in await cur.fetchall():
                            self.dispatch({"seq": int(seq), **payload})
                    assert self._ready is not None
                    self._ready.set()
                    async for notify in conn.notifies():
                        try:
                            self.dispatch(json.loads(notify.payload))
                        except (ValueError, KeyError, TypeError):
                            log.warning("ignoring malformed vacancy notification %r", notify.payload[:200])
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                log.warning("vacancy LISTEN connection lost (%s); reconnecting", exc)
                await asyncio.sleep(self.reconnect_delay_s)

    async def stop(self) -> None:
        """Stop listening (app shutdown)."""
        if self._task is not None:
            self._task.cancel()
            # Bounded like the read router's close: shutdown never waits on a stuck LISTEN connection.
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            for task in done:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
            self._task = None
