"""Shared pieces of the layer routers (OGC API - Features, tiles): JSON and ETag responses (their dependencies,
``ReadConnDep``, ``read_connection`` and ``TileCacheDep``, are in ``api/deps.py``)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request, Response

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
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=all_headers)
    return Response(content=content, media_type=media_type, headers=all_headers)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or etag.removeprefix("W/") in candidates


def not_modified(request: Request, etag: str, *, headers: dict[str, str] | None = None) -> Response | None:
    """A 304 with ``etag`` when the request's If-None-Match names it, else None (check before doing the work)."""
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL, **(headers or {})})
    return None
