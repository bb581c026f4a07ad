"""Idempotency keys (IETF draft-ietf-httpapi-idempotency-key-header) for creating requests.

A client that sends ``Idempotency-Key`` with a creating request may send the same request again (after a timeout,
a dropped connection) and get the first response instead of a second write or a ``duplicate`` conflict. The
first request's response is stored in ``idempotency_keys`` in the same transaction as its writes, so a crash
leaves either both or neither; a request that fails writes nothing and may be retried with the same key.

One transaction per keyed request:

1. ``claim`` takes a transaction-level advisory lock on (caller, key). Another transaction holding it means the
   same key is in progress: ``Conflict`` (``reason=idempotency_key_in_progress``, a 409).
2. Under the lock, a stored response for (caller, key) younger than the time to live is the answer: the same
   request (method, path and keyed hash of the body) gets it back for replay; another request ``InvalidQuery``
   (``reason=idempotency_key_reused``, a 422). An expired one is deleted and the key starts afresh.
3. Otherwise the caller does the work and stores its response with ``record`` before committing.

Expired keys are also deleted by ``purge_expired``, a few at a time by every recorded key (``record``), so the
table stays as large as one time to live of keyed requests without a separate job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import Conflict, InvalidQuery

# First key of the advisory lock of an idempotency key (second key: hashtext of caller and key).
LOCK_NAMESPACE = 7020
MAX_KEY_LENGTH = 255
# Expired keys deleted per recorded key: more than keys are recorded, so the backlog shrinks.
PURGE_BATCH = 100


@dataclass(frozen=True)
class StoredResponse:
    """A response as it was first sent: status, body bytes and the headers worth replaying."""

    status: int
    body: bytes
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class KeyedRequest:
    """Who sent which key with which request."""

    caller: str
    key: str
    method: str
    path: str
    request_hash: str


def caller_of(user_id: int | None) -> str:
    """The caller a key belongs to: ``user:<id>``, or ``anonymous`` without a login (sign-up)."""
    return "anonymous" if user_id is None else f"user:{user_id}"


def check_key(key: str) -> str:
    """The header's value when it is a usable key: 1 to 255 visible ASCII characters (``InvalidQuery``
    otherwise). The draft's Structured Field string quotes are taken off."""
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(0x20 < ord(c) < 0x7F for c in key):
        raise InvalidQuery(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
                           param="Idempotency-Key")
    return key


def request_fingerprint(body: bytes, *, key: str) -> str:
    """HMAC-SHA256 (hex) of a request body under ``key``; JSON is canonicalised first (key order and spacing do
    not count). Keyed, because a body may hold a secret (a sign-up's password) that a plain hash stored in the
    table would let anyone who reads it guess offline."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def claim(conn: Connection, request: KeyedRequest, *, ttl: timedelta) -> StoredResponse | None:
    """Take ``request.key`` for this transaction; the stored response to replay, or None: do the work, then
    ``record`` its response in the same transaction.

    Raises
    ------
    Conflict
        Another transaction holds the key (``reason=idempotency_key_in_progress``).
    InvalidQuery
        The key was first used for another request (``reason=idempotency_key_reused``).
    """
    locked = conn.execute(text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:lock))"),
                          {"ns": LOCK_NAMESPACE, "lock": f"{request.caller}\n{request.key}"}).scalar_one()
    if not locked:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry when it has finished",
                       reason="idempotency_key_in_progress")
    row = conn.execute(text(
        "SELECT method, path, request_hash, status, response_body, response_headers, "
        "created_at < now() - :ttl AS expired FROM idempotency_keys WHERE caller = :caller AND key = :key"),
        {"caller": request.caller, "key": request.key, "ttl": ttl}).mappings().one_or_none()
    if row is None:
        return None
    if row["expired"]:
        conn.execute(text("DELETE FROM idempotency_keys WHERE caller = :caller AND key = :key"),
                     {"caller": request.caller, "key": request.key})
        return None
    if (row["method"], row["path"], row["request_hash"]) != (request.method, request.path, request.request_hash):
        raise InvalidQuery("this Idempotency-Key was used for another request; use a new key for a new request",
                           param="Idempotency-Key", reason="idempotency_key_reused")
    return StoredResponse(status=int(row["status"]), body=bytes(row["response_body"]),
                          headers=[(str(k), str(v)) for k, v in row["response_headers"]])


def record(conn: Connection, request: KeyedRequest, response: StoredResponse, *, ttl: timedelta) -> None:
    """Store ``response`` as the answer to ``request`` (after ``claim`` in the same transaction) and delete a
    batch of expired keys."""
    conn.execute(text(
        "INSERT INTO idempotency_keys (caller, key, method, path, request_hash, status, response_body, "
        "response_headers) VALUES (:caller, :key, :method, :path, :hash, :status, :body, CAST(:headers AS jsonb))"),
        {"caller": request.caller, "key": request.key, "method": request.method, "path": request.path,
         "hash": request.request_hash, "status": response.status, "body": response.body,
         "headers": json.dumps([list(h) for h in response.headers])})
    purge_expired(conn, ttl=ttl, limit=PURGE_BATCH)


def purge_expired(conn: Connection, *, ttl: timedelta, limit: int | None = None) -> int:
    """Delete keys older than ``ttl`` (at most ``limit``; rows another transaction has locked are skipped, so
    concurrent writers never wait on each other here); the number deleted."""
    params: dict[str, Any] = {"ttl": ttl, "limit": limit}
    return int(conn.execute(text(
        "DELETE FROM idempotency_keys WHERE (caller, key) IN (SELECT caller, key FROM idempotency_keys "
        "WHERE created_at < now() - :ttl ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED)"),
        params).rowcount)
