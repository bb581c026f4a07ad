"""``Idempotency-Key`` on creating requests, in HTTP terms (the storage and its rules: ``geo.idempotency``).

A creating handler takes ``IdempotencyKeyDep`` (``AnonymousIdempotencyKeyDep`` for sign-up) next to its
``TxSessionDep``, on a router whose ``route_class`` is ``IdempotentRoute``. With the header:

- the first request runs; its response (status, body, headers but cookies) is stored in the request's own
  transaction, after the handler and before the commit;
- the same request again (same caller, method, path and JSON body) gets that response back, marked
  ``Idempotent-Replayed: true``, without running the handler;
- the key with another request: 422 problem+json (``reason=idempotency_key_reused``);
- the key while its first request is still running: 409 problem+json (``reason=idempotency_key_in_progress``).

A request that fails stores nothing (its transaction rolls back), so it may be retried with the same key.
Without the header nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from api.deps import TxSessionDep
from api.security import CurrentUser
from geo.idempotency import (
    MAX_KEY_LENGTH,
    KeyedRequest,
    StoredResponse,
    caller_of,
    check_key,
    claim,
    record,
    request_fingerprint,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers not replayed: recomputed (length) or not to be sent twice (cookies).
_NOT_REPLAYED = frozenset({"content-length", "set-cookie"})
_RESPONSE = "dolbom.idempotency.response"  # scope key: the response of a keyed request, before its commit
_ROUTE = "dolbom.idempotency.route"  # scope key: the request runs on an IdempotentRoute


class _Replay(Exception):
    """Raised by the dependency to answer with a stored response instead of running the handler."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("replay")
        self.stored = stored


class IdempotentRoute(APIRoute):
    """A route that hands its response to ``IdempotencyKeyDep`` before the write session commits (FastAPI
    closes function-scoped dependencies after the handler's response is built) and answers replays."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def keyed_handler(request: Request) -> Response:
            request.scope[_ROUTE] = True
            try:
                response = await handler(request)
            except _Replay as replay:
                stored = replay.stored
                return Response(content=stored.body, status_code=stored.status,
                                headers={**dict(stored.headers), REPLAYED_HEADER: "true"})
            request.scope[_RESPONSE] = response
            return response

        return keyed_handler


async def _fingerprint(request: Request, idempotency_key: Annotated[str | None, Header(
        alias=IDEMPOTENCY_HEADER, max_length=MAX_KEY_LENGTH + 2,
        description="A unique key (e.g. a UUID) per intended request: retrying with it returns the first "
                    "response instead of writing twice")] = None) -> str | None:
    """The body's fingerprint when the request carries a key (read here: the sync dependency cannot await)."""
    if idempotency_key is None:
        return None
    return request_fingerprint(await request.body(), key=request.app.state.settings.idempotency_hash_key)


Fingerprint = Annotated[str | None, Depends(_fingerprint)]


def _keyed(request: Request, session: TxSessionDep, fingerprint: str | None, user_id: int | None) -> Iterator[None]:
    if fingerprint is None:
        yield
        return
    if _ROUTE not in request.scope:  # a programming error: the response would never be stored
        raise RuntimeError(f"{request.url.path}: an Idempotency-Key dependency needs route_class=IdempotentRoute")
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    keyed = KeyedRequest(caller=caller_of(user_id), key=check_key(request.headers[IDEMPOTENCY_HEADER]),
                         method=request.method, path=request.url.path, request_hash=fingerprint)
    stored = claim(session.connection(), keyed, ttl=ttl)
    if stored is not None:
        raise _Replay(stored)
    request.scope.pop(_RESPONSE, None)
    yield
    response = request.scope.pop(_RESPONSE, None)
    body = getattr(response, "body", None)
    if response is None or body is None or not 200 <= response.status_code < 300:
        return
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_REPLAYED]
    record(session.connection(), keyed, StoredResponse(status=response.status_code, body=bytes(body), headers=headers),
           ttl=ttl)


def user_idempotency_key(request: Request, session: TxSessionDep, user: CurrentUser,
                         fingerprint: Fingerprint) -> Iterator[None]:
    """Dependency (``IdempotencyKeyDep``): the caller's ``Idempotency-Key`` for an authenticated request."""
    yield from _keyed(request, session, fingerprint, user.user_id)


def anonymous_idempotency_key(request: Request, session: TxSessionDep, fingerprint: Fingerprint) -> Iterator[None]:
    """Dependency (``AnonymousIdempotencyKeyDep``): an ``Idempotency-Key`` of a request without a login."""
    yield from _keyed(request, session, fingerprint, None)


# scope="function", like the write session it shares: the response is recorded before that session commits.
IdempotencyKeyDep = Annotated[None, Depends(user_idempotency_key, scope="function")]
AnonymousIdempotencyKeyDep = Annotated[None, Depends(anonymous_idempotency_key, scope="function")]
