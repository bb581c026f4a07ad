"""Read-your-writes over read replicas, in HTTP terms.

After a writing request (POST/PUT/PATCH/DELETE) has committed, the response carries the primary's WAL position
at that moment: a cookie for browsers (``dolbom_lsn``, HttpOnly, SameSite=Lax, 5 minutes) and a
``Dolbom-LSN`` header for API clients, who send it back as ``Dolbom-Min-LSN``. When the position cannot be read
the value is ``primary``: the writer's reads then go to the primary. A read carrying either goes only
to a replica that has replayed that position (or to the primary), so a parent sees what they just applied for.
Every response read through the router names its server in ``Dolbom-Read-Source``. Nothing here is active
without replicas. The dependencies that route reads (and ``min_lsn_of``) are in ``api/deps.py``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.headers import secure_cookie
from api.state import state_of
from geo.ops.replicas import format_lsn

LSN_COOKIE = "dolbom_lsn"
LSN_COOKIE_MAX_AGE_S = 300  # replicas replay within milliseconds; the cookie only has to outlive that
LSN_HEADER = "Dolbom-LSN"
MIN_LSN_HEADER = "Dolbom-Min-LSN"
READ_SOURCE_HEADER = "Dolbom-Read-Source"
# The position of a write that could not be read (the primary did not answer at once): read from the primary.
READ_PRIMARY = "primary"
WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ReadYourWrites:
    """ASGI middleware: stamps writing responses with the primary's WAL position and every routed read with its
    server (no read router in the app's state: passes everything through)."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool | None = None) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = state_of(scope)
        router = state.read_router if state is not None else None
        if router is None:
            await self.app(scope, receive, send)
            return
        writing = scope["method"] in WRITING_METHODS

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                source = scope.get("state", {}).get("read_source")
                if source:
                    headers[READ_SOURCE_HEADER] = source
                # The handler has committed by now (WriteTx commits before the response starts), so the
                # position covers its writes; without one (the primary did not answer) the writer reads from
                # the primary, never from a replica that may not have the write.
                if writing and message["status"] < 500:
                    lsn = await router.primary_lsn()
                    text = READ_PRIMARY if lsn is None else format_lsn(lsn)
                    headers[LSN_HEADER] = text
                    secure = "; Secure" if secure_cookie(scope, self.cookie_secure) else ""
                    headers.append("set-cookie", f"{LSN_COOKIE}={text}; Max-Age={LSN_COOKIE_MAX_AGE_S}; Path=/; "
                                                 f"HttpOnly; SameSite=Lax{secure}")
            await send(message)

        await self.app(scope, receive, stamped)
