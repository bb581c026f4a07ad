"""``Cache-Control: no-store`` on every private answer: whatever an identified caller was told (their account,
waitlist, bookings, applicant lists, the audit log), and the login, token and sign-up answers.

A pure ASGI middleware; ``api/security.py`` marks the request (``mark_private``) as soon as a route asks who the
caller is, so the header is on the answer whatever it is (200, 403, 404, 422) and whatever the handler returns
(a model, a ``Response``). Public answers (search, tiles, static files) stay cacheable.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PRIVATE_KEY = "dolbom.private"
# Answers holding credentials or an account whoever asks (no caller identified yet).
PRIVATE_PREFIXES = ("/auth/", "/admin/")
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


def mark_private(scope: Scope) -> None:
    """Mark the request's answer as private (never stored by a browser or a shared cache)."""
    scope[PRIVATE_KEY] = True


class NoStorePrivate:
    """Adds ``Cache-Control: no-store`` (replacing any other ``Cache-Control``) to private answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if str(scope.get("path", "")).startswith(PRIVATE_PREFIXES):
            mark_private(scope)

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get(PRIVATE_KEY):
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"cache-control", b"pragma")]
                message["headers"] = [*kept, *NO_STORE]
            await send(message)

        await self.app(scope, receive, send_marked)
