"""``Idempotency-Key`` on creating requests, in HTTP terms (the storage and its rules: ``geo.idempotency``; the
dependencies ``IdempotencyKeyDep``/``AnonymousIdempotencyKeyDep`` and the route class: ``api.deps``).

A creating handler takes ``IdempotencyKeyDep`` (``AnonymousIdempotencyKeyDep`` for sign-up) next to its
``WriteTx``, on a router whose ``route_class`` is ``WriteRoute``. With the header:

- the first request runs; in the handler's own worker-thread step ``WriteRoute`` then serialises its answer,
  stores the response (status, body, headers but cookies) in the request's write transaction and commits it, so
  the writes and the stored response are committed together, before the response is sent;
- the same request again (same caller, method, path and JSON body) gets that response back, marked
  ``Idempotent-Replayed: true``, without running the handler;
- the key with another request: 422 problem+json (``reason=idempotency_key_reused``);
- the key while its first request is still running: 409 problem+json (``reason=idempotency_key_in_progress``).

A request that fails stores nothing (its transaction rolls back), so it may be retried with the same key.
Without the header nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session
from starlette.responses import Response

from geo.idempotency import KeyedRequest, StoredResponse, record

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers not replayed: recomputed (length) or not to be sent twice (cookies).
_NOT_REPLAYED = frozenset({"content-length", "set-cookie"})


@dataclass(frozen=True)
class KeyedWrite:
    """The ``Idempotency-Key`` of one writing request, claimed in its write transaction (``session``):
    ``replay`` is the stored response to send instead of running the handler, else None."""

    request: KeyedRequest
    session: Session
    ttl: timedelta
    replay: StoredResponse | None

    def record(self, response: Response) -> None:
        """Store ``response`` (a success only) in the write transaction, before it commits."""
        if not 200 <= response.status_code < 300:
            return
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_REPLAYED]
        record(self.session.connection(), self.request,
               StoredResponse(status=response.status_code, body=bytes(response.body), headers=headers), ttl=self.ttl)


def replayed(stored: StoredResponse) -> Response:
    """The stored response, sent again with ``Idempotent-Replayed: true``."""
    return Response(content=stored.body, status_code=stored.status,
                    headers={**dict(stored.headers), REPLAYED_HEADER: "true"})
