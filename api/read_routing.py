"""Read-your-writes over read replicas, in HTTP terms.

After a writing request (POST/PUT/PATCH/DELETE) has committed, the response carries the primary's WAL position
at that moment: a cookie for browsers (``dolbom_lsn``, HttpOnly, SameSite=Lax, 5 minutes) and a
``Dolbom-LSN`` header for API clients, who send it back as ``Dolbom-Min-LSN``. When the position cannot be read
the value is ``primary``: the writer's reads then go to the primary. A read carrying either goes only
to a replica that has replayed that position (or to the primary), so a parent sees what they just applied for.
Every response read through the router names its server in ``Dolbom-Read-Source``. Nothing here is active
without replicas.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.errors import InvalidQuery
from geo.ops.replicas import PRIMARY_ONLY_LSN, ReadRouter, format_lsn, parse_lsn

LSN_COOKIE = "dolbom_lsn"
LSN_COOKIE_MAX_AGE_S = 300  # replicas replay within milliseconds; the cookie only has to outlive that
LSN_HEADER = "Dolbom-LSN"
MIN_LSN_HEADER = "Dolbom-Min-LSN"
READ_SOURCE_HEADER = "Dolbom-Read-Source"
# The position of a write that could not be read (the primary did not answer at once): read from the primary.
READ_PRIMARY = "primary"
WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def min_lsn_of(conn: HTTPConnection) -> int | None:
    """The WAL position this request must read at least: the later of the ``Dolbom-Min-LSN`` header (malformed:
    ``InvalidQuery``, a 422) and the ``dolbom_lsn`` cookie (malformed: ignored, it may be an old browser's)."""
    positions: list[int] = []
    if header := conn.headers.get(MIN_LSN_HEADER):
        positions.append(PRIMARY_ONLY_LSN if header.strip() == READ_PRIMARY else parse_lsn(header))
    if cookie := conn.cookies.get(LSN_COOKIE):
        try:
            positions.append(PRIMARY_ONLY_LSN if cookie == READ_PRIMARY else parse_lsn(cookie))
        except InvalidQuery:
            pass
    return max(positions) if positions else None


class ReadYourWrites:
    """ASGI middleware: stamps writing responses with the primary's WAL position and every routed read with its
    server (``app.state.read_router`` None: passes everything through)."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool = False) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        router: ReadRouter | None = getattr(scope["app"].state, "read_router", None)
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
                # The handler has committed by now (TxSessionDep commits before the response starts), so the
                # position covers its writes; without one (the primary did not answer) the writer reads from
                # the primary, never from a replica that may not have the write.
                if writing and message["status"] < 500:
                    lsn = await router.primary_lsn()
                    text = READ_PRIMARY if lsn is None else format_lsn(lsn)
                    headers[LSN_HEADER] = text
                    secure = "; Secure" if self.cookie_secure else ""
                    headers.append("set-cookie", f"{LSN_COOKIE}={text}; Max-Age={LSN_COOKIE_MAX_AGE_S}; Path=/; "
                                                 f"HttpOnly; SameSite=Lax{secure}")
            await send(message)

        await self.app(scope, receive, stamped)
