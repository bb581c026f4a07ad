"""Cached tiles answered before the framework: a pure ASGI middleware just inside the security headers.

A ``GET /tiles/{layer}/{z}/{x}/{y}.mvt`` whose version the change feed vouches for (``TileCache.current``: the
key is only there once the route served it, so it was validated) is answered from memory with headers built
once per tile version: 200 with the body, or 304 on a matching ``If-None-Match``. Everything else, and every
request while read replicas are configured (the read router decides the server there), goes to the app. The
profile of the cached path through the app showed the time in routing, dependency solving (with a thread-pool
hop for the layer engine), ten middleware layers and the response object, not in the cache (benchmarks/README.md).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.routers.layer_common import CACHE_CONTROL, etag_matches
from api.state import state_of
from tiles.cache import CurrentTile

PREFIX = "/tiles/"
SUFFIX = ".mvt"
MVT = b"application/vnd.mapbox-vector-tile"


def _prepared(entry: CurrentTile) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Raw headers of the 200 and of the 304 of ``entry``, the same as ``etag_response`` sends."""
    if entry.prepared is None:
        common = [(b"etag", entry.etag.encode()), (b"cache-control", CACHE_CONTROL.encode())]
        ok = [(b"content-length", str(len(entry.body)).encode()), (b"content-type", MVT), *common]
        entry.prepared = (ok, common)
    return entry.prepared  # type: ignore[return-value]


class CachedTiles:
    """Answer current cached tiles (and their 304s) without routing, dependencies or the inner middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                state = state_of(scope)
                if state is not None and state.read_router is None:
                    entry = state.tile_cache.current(path[len(PREFIX):-len(SUFFIX)])
                    if entry is not None:
                        await self._answer(scope, send, entry)
                        return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, send: Send, entry: CurrentTile) -> None:
        ok, not_modified = _prepared(entry)
        if_none_match = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), entry.etag):
            # Copies: the outer middleware appends its headers to the list it is given.
            await send({"type": "http.response.start", "status": 304, "headers": list(not_modified)})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(ok)})
        await send({"type": "http.response.body", "body": entry.body})
