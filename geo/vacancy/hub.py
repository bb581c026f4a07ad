"""Fan-out of vacancy events inside one process: one LISTEN connection per process, many subscribers.

Every API worker process has its own hub; PostgreSQL delivers each ``NOTIFY dolbom_vacancy`` to all of
them, so a report written through any worker reaches the streams of every worker. The notification carries
the whole event (a few hundred bytes, well under the 8 kB NOTIFY limit); when the LISTEN connection drops,
the hub reconnects and fills the gap from ``vacancy_events``. No web framework here: ``api/routers/vacancy.py``
turns subscriptions into Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg

from geo.db import as_libpq_url
from geo.vacancy.reports import NOTIFY_CHANNEL, EventFilter

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000


def sse_frame(event: dict[str, Any]) -> str:
    """The Server-Sent Events frame of an event: ``id`` = seq, ``event: vacancy``, JSON ``data``."""
    data = {k: v for k, v in event.items() if not k.startswith("_")}
    return f"id: {event['seq']}\nevent: vacancy\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Subscription:
    """One stream's queue and filter; ``overflowed`` when it fell ``QUEUE_SIZE`` events behind."""

    filter: EventFilter
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


class VacancyHub:
    """LISTEN once, fan out to subscriptions; started lazily by the first subscriber."""

    def __init__(self, dsn: str, *, reconnect_delay_s: float = 1.0) -> None:
        self.dsn = as_libpq_url(dsn)
        self.reconnect_delay_s = reconnect_delay_s
        self.subscriptions: set[Subscription] = set()
        self.last_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    async def subscribe(self, flt: EventFilter) -> Subscription:
        """Register a subscription; returns once the hub is listening (so no later event is missed)."""
        sub = Subscription(flt)
        self.subscriptions.add(sub)
        await self._ensure_started()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription."""
        self.subscriptions.discard(sub)

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
        # Serialised once for every subscriber (the SSE frame is the same for all of them).
        event = {**event, "_frame": sse_frame(event)}
        for sub in list(self.subscriptions):
            if sub.filter.matches(event):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.overflowed = True
                    self.subscriptions.discard(sub)

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
