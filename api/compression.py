"""Compressed answers and cache headers for static assets: what makes the map's first load light.

``Compression`` gzips text answers (JSON, GeoJSON, JavaScript, CSS, HTML) for clients that accept it (Starlette's
``GZipMiddleware``, level 6: most of the size gain of 9 for a fraction of the CPU), never vector tiles (their
answers from memory, ``api/tile_fast_path.py``, must be the same bytes under the same ETag) or event streams. A
compressed answer's ETag is made weak (``W/``), as nginx does: the bytes differ from the identity answer's, and
``If-None-Match`` compares weakly, so 304s keep working. HEAD answers the headers a GET would get, without
Content-Length (known only once compressed; RFC 9110 allows leaving it out). Off with ``DOLBOM_COMPRESS=false``
(a proxy in front compresses, or the benchmark measures the uncompressed page).

``StaticAssets`` is ``StaticFiles`` with ``Cache-Control``: vendored libraries (``/static/vendor/``, versioned
in their directory, changed only with a release of ours) are cached a day; our own scripts and styles are
revalidated every time (their ETag, 304). With compression on, a text asset is gzipped once (level 9) and kept in
memory until the file changes (its size or mtime): the map's first load asks for nine assets at once, and
gzipping them on every request (Leaflet alone is 148 KB) delayed them and the first page of centres behind them
on a loaded server (benchmarks/README.md, issue 24).
"""

from __future__ import annotations

import gzip
import os
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MVT = "application/vnd.mapbox-vector-tile"
GZIP_LEVEL = 6
STATIC_GZIP_LEVEL = 9  # once per file: the smallest answer
STATIC_COMPRESSED_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
MIN_SIZE_BYTES = 1000  # below a packet's worth, compression gains nothing
VENDOR_MAX_AGE_S = 86_400


class Compression:
    """gzip of text answers (see the module docstring), with weak ETags on compressed answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.gzip = GZipMiddleware(app, minimum_size=MIN_SIZE_BYTES, compresslevel=GZIP_LEVEL,
                                   exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, MVT))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.gzip.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            await self.gzip.app(scope, receive, self._head_sender(scope, send))
            return

        async def weak_when_compressed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                etag = headers.get("etag")
                if etag and not etag.startswith("W/") and "content-encoding" in headers:
                    headers["etag"] = "W/" + etag
            await send(message)

        await self.gzip(scope, receive, weak_when_compressed)

    def _head_sender(self, scope: Scope, send: Send) -> Send:
        """HEAD: the headers GET would have (RFC 9110 9.3.2) but Content-Length, known only once compressed."""
        accepts_gzip = "gzip" in Headers(scope=scope).get("accept-encoding", "")

        async def as_get(message: Message) -> None:
            if message["type"] == "http.response.start" and accepts_gzip and message["status"] == 200:
                headers = MutableHeaders(scope=message)
                media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
                length = int(headers.get("content-length", "0") or 0)
                excluded = {media_type, media_type.partition("/")[0] + "/*"} & set(self.gzip.exclude_content_types)
                if "content-encoding" not in headers and not excluded and length >= MIN_SIZE_BYTES:
                    del headers["content-length"]
                    headers["content-encoding"] = "gzip"
                    headers.add_vary_header("Accept-Encoding")
                    etag = headers.get("etag")
                    if etag and not etag.startswith("W/"):
                        headers["etag"] = "W/" + etag
            await send(message)

        return as_get


class StaticAssets(StaticFiles):
    """Static files with ``Cache-Control`` (a day for ``vendor/``, revalidation for the rest); with ``compress``,
    text assets gzipped once and answered from memory to clients that accept gzip."""

    def __init__(self, *args: Any, compress: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compress = compress
        self._gzipped: dict[str, tuple[int, int, bytes]] = {}  # path -> (mtime_ns, size, gzip bytes)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        """The file's response with its ``Cache-Control``; the gzip bytes from memory when they apply."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = f"{os.sep}vendor{os.sep}" in os.fspath(full_path)
        response.headers["cache-control"] = f"public, max-age={VENDOR_MAX_AGE_S}" if vendored else "public, no-cache"
        request = Headers(scope=scope)
        if (not self.compress or response.status_code != 200 or scope["method"] != "GET" or "range" in request
                or "gzip" not in request.get("accept-encoding", "")
                or not response.media_type or not response.media_type.startswith(STATIC_COMPRESSED_TYPES)
                or stat_result.st_size < MIN_SIZE_BYTES):
            return response
        body = self._gzip_of(os.fspath(full_path), stat_result)
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "accept-ranges")}
        # Compression (outside) passes an encoded answer through and makes its ETag weak.
        compressed = Response(body, status_code=200, headers=headers | {"content-encoding": "gzip"})
        compressed.headers.add_vary_header("Accept-Encoding")
        return compressed

    def _gzip_of(self, path: str, stat_result: os.stat_result) -> bytes:
        """The file gzipped, from memory while its mtime and size are those of ``stat_result``."""
        cached = self._gzipped.get(path)
        if cached and cached[:2] == (stat_result.st_mtime_ns, stat_result.st_size):
            return cached[2]
        with open(path, "rb") as file:  # once per file and change: a blocking read is cheaper than a thread hop
            body = gzip.compress(file.read(), compresslevel=STATIC_GZIP_LEVEL, mtime=0)
        self._gzipped[path] = (stat_result.st_mtime_ns, stat_result.st_size, body)
        return body
