"""The change feed of the tile versions: one LISTEN connection per process on the ``layer_changes`` trigger's
NOTIFY (migration 0018), telling the process's ``TileCache`` which tiles a committed change touched.

Like the vacancy hub (``geo/vacancy/hub.py``) it listens on the direct database URL (a LISTEN cannot go through
PgBouncer's transaction pooling) and reconnects when the connection drops. Between notifications it proves the
connection alive with an empty query every ``stale_s / 2`` seconds, bounded by the same time; the cache trusts
the feed only while that proof is fresher than ``stale_s`` (``TileCache.current``), so a connection that died
silently costs at most ``stale_s`` seconds of staleness, like one that dropped visibly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import psycopg

from geo.db import as_libpq_url
from tiles.cache import Box, TileCache

log = logging.getLogger(__name__)
CHANNEL = "dolbom_layer_changes"


def parse_change(payload: str) -> dict[str, Box]:
    """``{layer: (xmin, ymin, xmax, ymax)}`` (EPSG:3857) of a notification; ValueError when malformed."""
    data = json.loads(payload)
    boxes: dict[str, Box] = {}
    for layer, box in data["layers"].items():
        xmin, ymin, xmax, ymax = (float(v) for v in box)
        boxes[str(layer)] = (xmin, ymin, xmax, ymax)
    return boxes


class TileVersionFeed:
    """LISTEN for layer changes and keep ``cache``'s current tiles in step; ``start`` once per process."""

    def __init__(self, dsn: str, cache: TileCache, *, reconnect_delay_s: float = 1.0) -> None:
        self.dsn = as_libpq_url(dsn)
        self.cache = cache
        self.reconnect_delay_s = reconnect_delay_s
        self.backend_pid: int | None = None  # of the LISTEN connection (tests end it with pg_terminate_backend)
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def heartbeat_s(self) -> float:
        """Seconds between the proofs that the connection is alive."""
        return self.cache.stale_s / 2

    def start(self) -> None:
        """Start listening in the background (the app's lifespan; nothing waits for the database)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="tile-version-feed")

    async def wait_listening(self, timeout_s: float) -> bool:
        """Wait until the feed listens (tests, benchmarks); False after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._listening.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.dsn, autocommit=True, connect_timeout=max(1, int(self.heartbeat_s))) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.connections += 1
                    self.cache.feed_connected()
                    self._listening.set()
                    await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("tile version LISTEN connection lost (%s); reconnecting", exc)
            self._lost()
            await asyncio.sleep(self.reconnect_delay_s)

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            async for notify in conn.notifies(timeout=self.heartbeat_s):
                try:
                    self.cache.changed(parse_change(notify.payload))
                except (ValueError, KeyError, TypeError, AttributeError):
                    log.warning("ignoring malformed layer change %r; forgetting every current tile",
                                notify.payload[:200])
                    self.cache.forget_current()
                self.cache.alive_at = time.monotonic()
            await asyncio.wait_for(conn.execute("SELECT 1"), self.heartbeat_s)
            self.cache.alive_at = time.monotonic()

    def _lost(self) -> None:
        self._listening.clear()
        self.backend_pid = None
        self.cache.feed_lost()

    async def stop(self) -> None:
        """Stop listening (app shutdown), bounded like the vacancy hub's stop."""
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            for task in done:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
            self._task = None
            self._lost()
