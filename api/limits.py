"""Request body size caps, enforced before a body is read (a pure ASGI middleware).

A declared ``Content-Length`` over the route's cap is answered 413 at once, without reading a byte of the body;
a streamed body (chunked, or a Content-Length that lies) is counted as it arrives and refused once it passes the
cap, so a worker never holds more than one cap plus one chunk of it. Without this, one 300 MB login body took a
worker from 0.3 to 1.2 GB of memory.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON bodies of this API are small (the largest, a recurring booking pattern with a year of exceptions, is a few
# KiB); routes that need more are listed here by path prefix, largest first where prefixes overlap.
DEFAULT_MAX_BODY_BYTES = 64 * 1024
ROUTE_MAX_BODY_BYTES: dict[str, int] = {
    "/bookings/centres/": 256 * 1024,  # slots and patterns (a pattern lists up to 366 exception dates)
}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(Exception):
    """The request body passed its cap while it was being read."""


class BodyLimit:
    """Answers 413 problem+json to a body over the route's cap (``max_body_bytes`` unless a route needs more)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 routes: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.routes = sorted((routes if routes is not None else ROUTE_MAX_BODY_BYTES).items(),
                             key=lambda item: -len(item[0]))

    def cap_for(self, path: str) -> int:
        """The body cap (bytes) of a request to ``path``."""
        return next((cap for prefix, cap in self.routes if path.startswith(prefix)), self.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        cap = self.cap_for(path)
        declared = next((value for name, value in scope.get("headers", []) if name == b"content-length"), None)
        if declared is not None and (not declared.strip().isdigit() or int(declared) > cap):
            await _refuse(send, cap=cap, path=path)
            return
        received = 0
        too_large = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    too_large = True
                    raise BodyTooLarge(f"request body over {cap} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # whatever the app made of the cut body: the 413 goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if too_large and not started:
            await _refuse(send, cap=cap, path=path)


async def _refuse(send: Send, *, cap: int, path: str) -> None:
    """Send the 413 problem+json (the connection is closed after it: the rest of the body is never read)."""
    body = json.dumps({"type": "about:blank", "title": "Request body too large", "status": 413,
                       "detail": f"the request body must be at most {cap} bytes", "instance": path,
                       "max_body_bytes": cap}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
