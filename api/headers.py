"""Security headers on every response (a pure ASGI middleware: no per-request task or body copy).

The map page needs only its own scripts and styles, OpenStreetMap tiles when online, and data: images (Leaflet
icons). ``/docs`` and ``/redoc`` (Swagger UI, ReDoc: vendored under ``/static/vendor``, no CDN) get their own
policy: scripts still only from this origin (Swagger UI starts from a file, ReDoc from its ``<redoc>`` element),
but inline styles (both render them from JavaScript) and blob: workers (ReDoc's search).
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
           "img-src 'self' data: https://*.tile.openstreetmap.org https://tile.openstreetmap.org; "
           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
           "frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self'; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(self), camera=(), microphone=()"),
]


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def secure_cookie(scope: Scope, setting: bool | None) -> bool:
    """Whether a cookie set in answer to this request is ``Secure``: ``DOLBOM_COOKIE_SECURE`` when set; else
    yes, unless the request came over plain HTTP to a loopback host (a laptop: ``http://127.0.0.1:8000``).

    The scheme is uvicorn's: ``https`` on TLS, or from ``X-Forwarded-Proto`` of a proxy that
    DOLBOM_FORWARDED_ALLOW_IPS names.
    """
    if setting is not None:
        return setting
    if scope.get("scheme") in ("https", "wss"):
        return True
    host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), "")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if not hostname and scope.get("server"):
        hostname = str(scope["server"][0])
    return not (hostname.lower() in LOOPBACK_HOSTS or hostname.lower().endswith(".localhost"))


class SecurityHeaders:
    """Adds Content-Security-Policy (with frame-ancestors), X-Content-Type-Options and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if str(scope.get("path", "")).startswith(DOCS_PATHS) else APP_CSP
        headers = [*_COMMON, (b"content-security-policy", csp.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WorkerHeader:
    """Adds ``X-Dolbom-Worker: <pid>`` (the process that answered) when ``DOLBOM_WORKER_HEADER`` is on, so that
    an operator or a test can see how requests spread over the workers of one port. Off by default: a process
    id is nothing a browser needs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Built in the worker process itself (the app factory runs after the worker starts).
        self.header = (b"x-dolbom-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
