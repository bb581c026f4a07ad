"""In development (DOLBOM_ENV=development), a banner on every HTML page the server makes: the OGC API pages,
``/docs`` and ``/redoc``. The map page (``/``) shows its own, in the reader's language (api/static/map.js).

A pure ASGI middleware, installed only while the settings have development warnings: production pays nothing.
"""

from __future__ import annotations

import html
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BANNER_TEXT = ("개발용 서버입니다: 본인인증은 진짜가 아니며 실제 서비스에 쓰면 안 됩니다. "
               "/ Development server: identity verification is not real; do not use it for a real service.")
_BODY_TAG = re.compile(rb"<body[^>]*>", re.IGNORECASE)
OWN_BANNER_PATHS = frozenset({"/"})


def banner_html(warnings: list[str]) -> bytes:
    """The banner (its style is a file of ours: our CSP allows no inline style), the warnings as its title."""
    return (f"<link rel='stylesheet' href='/static/banner.css'><p class='dolbom-dev-banner' role='alert' "
            f"title='{html.escape(' | '.join(warnings))}'>{html.escape(BANNER_TEXT)}</p>").encode()


class DevBanner:
    """Inserts the development banner right after ``<body>`` of every ``text/html`` answer."""

    def __init__(self, app: ASGIApp, *, warnings: list[str]) -> None:
        self.app = app
        self.banner = banner_html(warnings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OWN_BANNER_PATHS:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def bannered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = next((v for k, v in message.get("headers", []) if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    start = message  # held until the whole page is here
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = _BODY_TAG.sub(lambda m: m.group(0) + self.banner, b"".join(chunks), count=1)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, bannered)
