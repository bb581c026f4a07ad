"""Tile cache that follows the data: ETags from ``layer_changes`` versions, bodies kept in memory by version, and
the versions of served tiles kept current in process by the change feed (``tiles/feed.py``).

The database gives a tile's data version (one indexed query on ``layer_changes``); the ETag is derived from it. A
tile whose version the database confirmed is then *current* in this process until the change feed (LISTEN on the
``layer_changes`` trigger's NOTIFY) reports a change whose box meets the tile: so a cached tile, or a 304 on
``If-None-Match``, costs no database round trip. While the feed is down (or has never connected) a tile counts as
current for ``stale_s`` seconds after the database last confirmed its version: that is the staleness bound.

A version read while a notification (or a reconnection) arrived is not marked current: the read may predate the
change the notification announced.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

WEB_MERCATOR_HALF_M = 20037508.342789244
BOX_SLACK_M = 1.0  # boxes arrive rounded (ST_Extent); a metre of slack keeps the intersection test conservative

Box = tuple[float, float, float, float]


def tile_etag(key: str, definition: str, count: int, last_seq: int) -> str:
    """Strong ETag of a tile ``key`` (layers/z/x/y) at data version (count, last_seq) and definition hash."""
    digest = hashlib.sha1(f"{key}|{definition}|{count}|{last_seq}".encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()[:20]}"'


def tile_box_3857(z: int, x: int, y: int, *, margin: float) -> Box:
    """Bounds (EPSG:3857 metres) of tile z/x/y grown by ``margin`` (a fraction of the tile), as ``ST_TileEnvelope``."""
    size = 2 * WEB_MERCATOR_HALF_M / 2**z
    grow = margin * size
    xmin = -WEB_MERCATOR_HALF_M + x * size
    ymax = WEB_MERCATOR_HALF_M - y * size
    return (xmin - grow, ymax - size - grow, xmin + size + grow, ymax + grow)


def boxes_meet(a: Box, b: Box) -> bool:
    """Whether two boxes intersect (edges included, with ``BOX_SLACK_M`` of slack)."""
    return (a[0] <= b[2] + BOX_SLACK_M and b[0] <= a[2] + BOX_SLACK_M
            and a[1] <= b[3] + BOX_SLACK_M and b[1] <= a[3] + BOX_SLACK_M)


@dataclass(slots=True)
class CurrentTile:
    """A tile whose version the database confirmed: its ETag and body, and what a change must meet to drop it."""

    etag: str
    body: bytes
    layers: frozenset[str]
    box_3857: Box
    checked_at: float  # time.monotonic() of the database's confirmation
    generation: int  # the feed's generation that watched it since, or -1 (not watched: valid for stale_s)
    prepared: object | None = None  # the HTTP layer's precomputed answer (api/tile_fast_path.py), built once


class TileCache:
    """Bounded LRU of rendered tiles keyed by ETag (which encodes layers, z/x/y, definition and data version), and
    the current version of each tile key (layers/z/x/y) while the change feed watches it."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, *, stale_s: float = 5.0,
                 max_current: int = 200_000) -> None:
        self.max_bytes = max_bytes
        self.stale_s = stale_s
        self.max_current = max_current
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._keys: set[str] = set()  # tile keys (layers/z/x/y) rendered at some version
        self._current: OrderedDict[str, CurrentTile] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()
        self.hits = 0
        self.misses = 0
        # The change feed's state: ``epoch`` moves on every notification, connection and loss, ``generation`` on
        # every connection and loss; ``watching`` while a LISTEN connection is up.
        self.epoch = 0
        self.generation = 0
        self.watching = False
        self.alive_at = 0.0  # time.monotonic() when the feed last proved its connection alive
        self.notifications = 0

    # --- bodies by ETag ---------------------------------------------------------------------------------------

    def get(self, etag: str) -> bytes | None:
        """The body cached under ``etag`` or None."""
        with self._lock:
            body = self._entries.get(etag)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(etag)
            self.hits += 1
            return body

    def seen(self, key: str) -> bool:
        """Whether tile ``key`` was rendered before (in any version): if not, render without asking first."""
        return key in self._keys

    def put(self, etag: str, body: bytes, *, key: str | None = None) -> None:
        """Keep ``body`` under ``etag``, evicting the least recently used tiles beyond ``max_bytes``."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key is not None and len(self._keys) < 1_000_000:
                self._keys.add(key)
            old = self._entries.pop(etag, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[etag] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        """Forget every tile."""
        with self._lock:
            self._entries.clear()
            self._keys.clear()
            self._current.clear()
            self._bytes = 0

    # --- current versions -------------------------------------------------------------------------------------

    def current(self, key: str) -> CurrentTile | None:
        """The tile ``key`` if its version is known to be current without asking the database, else None."""
        entry = self._current.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if self.watching and entry.generation == self.generation and now - self.alive_at < self.stale_s:
            return entry
        if now - entry.checked_at < self.stale_s:
            return entry
        return None

    def confirm(self, key: str, etag: str, body: bytes, *, layers: frozenset[str], box_3857: Box, epoch: int,
                watched: bool = True) -> None:
        """Record that the database gave ``etag`` as tile ``key``'s version in a read started at feed ``epoch``.

        The feed watches it from now on if it was listening throughout the read (``epoch`` unchanged) and the read
        was on the database the feed listens to (``watched``); otherwise it is current for ``stale_s`` only.
        """
        generation = self.generation if (watched and self.watching and epoch == self.epoch) else -1
        entry = CurrentTile(etag, body, layers, box_3857, time.monotonic(), generation)
        with self._lock:
            self._current[key] = entry
            self._current.move_to_end(key)
            while len(self._current) > self.max_current:
                self._current.popitem(last=False)

    # --- the change feed's side -------------------------------------------------------------------------------

    def feed_connected(self) -> None:
        """The feed is listening (again): what changed while it was not is unknown, so nothing is watched yet."""
        self.generation += 1
        self.epoch += 1
        self.watching = True
        self.alive_at = time.monotonic()

    def feed_lost(self) -> None:
        """The feed stopped listening: tiles fall back to ``stale_s`` after their last confirmation."""
        self.watching = False
        self.generation += 1
        self.epoch += 1

    def forget_current(self) -> None:
        """Ask the database again for every tile (a notification that could not be read)."""
        self.epoch += 1
        with self._lock:
            self._current.clear()

    def changed(self, boxes: dict[str, Box]) -> int:
        """A change to ``boxes`` ({layer: EPSG:3857 box}): drop the current tiles it meets; returns how many."""
        self.epoch += 1
        self.notifications += 1
        with self._lock:
            stale = [key for key, entry in self._current.items()
                     if any(layer in boxes and boxes_meet(entry.box_3857, boxes[layer]) for layer in entry.layers)]
            for key in stale:
                del self._current[key]
        return len(stale)
