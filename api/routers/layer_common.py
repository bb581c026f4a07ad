"""Shared pieces of the layer routers (OGC API - Features, tiles): the async engine, JSON and ETag responses."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from api.read_routing import min_lsn_of
from tiles.cache import TileCache


def get_layer_engine(request: Request) -> AsyncEngine:
    """The async engine for layer reads: the primary's, or with read replicas the engine of the server the read
    router chooses now (a replica that has replayed the request's write position, else the primary)."""
    router = request.app.state.read_router
    if router is not None:
        server = router.choose(min_lsn_of(request))
        request.state.read_source = server.name
        replica_engine: AsyncEngine | None = request.app.state.replica_layer_engines.get(server.name)
        if replica_engine is not None:
            return replica_engine
    return request.app.state.layer_engine  # type: ignore[no-any-return]


def get_tile_cache(request: Request) -> TileCache:
    """The app's tile cache."""
    return request.app.state.tile_cache  # type: ignore[no-any-return]


LayerEngineDep = Annotated[AsyncEngine, Depends(get_layer_engine)]
TileCacheDep = Annotated[TileCache, Depends(get_tile_cache)]

CACHE_CONTROL = "public, no-cache"  # cache, but revalidate every time: the ETag follows the data


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(body: Any) -> bytes:
    """orjson with Decimal as float."""
    return orjson.dumps(body, default=_default)


def etag_response(request: Request, content: bytes, media_type: str, *, etag: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """``content`` with a strong ETag (its hash unless given) and Cache-Control; 304 on a matching If-None-Match."""
    etag = etag or '"' + hashlib.sha1(content, usedforsecurity=False).hexdigest()[:24] + '"'
    all_headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, **(headers or {})}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=all_headers)
    return Response(content=content, media_type=media_type, headers=all_headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or etag in candidates
