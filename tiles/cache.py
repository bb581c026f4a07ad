"""Tile cache that follows the data: ETags from ``layer_changes`` versions, bodies kept in memory by version.

A request asks the database for the tile's data version (one indexed query on ``layer_changes``); the ETag is
derived from it, so ``If-None-Match`` is answered 304 without rendering, and a body rendered for the same
version is served from memory. A change to a feature changes the version of exactly the tiles it touches.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from threading import Lock


def tile_etag(key: str, definition: str, count: int, last_seq: int) -> str:
    """Strong ETag of a tile ``key`` (layers/z/x/y) at data version (count, last_seq) and definition hash."""
    digest = hashlib.sha1(f"{key}|{definition}|{count}|{last_seq}".encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()[:20]}"'


class TileCache:
    """Bounded LRU of rendered tiles keyed by ETag (which encodes layers, z/x/y, definition and data version)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._keys: set[str] = set()  # tile keys (layers/z/x/y) rendered at some version
        self._bytes = 0
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

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
            self._bytes = 0
