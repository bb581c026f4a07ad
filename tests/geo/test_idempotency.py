"""Idempotency keys in the database: expiry (an expired key starts afresh) and the batched purge."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import Connection, text

from geo.errors import InvalidQuery
from geo.idempotency import (
    KeyedRequest,
    StoredResponse,
    check_key,
    claim,
    purge_expired,
    record,
    request_fingerprint,
)

TTL = timedelta(hours=24)
KEY = "test-key"


def _request(key: str, body: bytes = b'{"a": 1}') -> KeyedRequest:
    return KeyedRequest(caller="user:1", key=key, method="POST", path="/things",
                        request_hash=request_fingerprint(body, key=KEY))


def _age(conn: Connection, key: str, hours: float) -> None:
    conn.execute(text("UPDATE idempotency_keys SET created_at = now() - make_interval(secs => :s) WHERE key = :k"),
                 {"s": hours * 3600, "k": key})


def test_a_stored_response_is_replayed_until_it_expires(connection: Connection) -> None:
    first = StoredResponse(status=201, body=b'{"id": 7}', headers=[("content-type", "application/json")])
    assert claim(connection, _request("k1"), ttl=TTL) is None
    record(connection, _request("k1"), first, ttl=TTL)
    # Same body in another spelling: the same request.
    assert claim(connection, _request("k1", b'{ "a" : 1 }'), ttl=TTL) == first
    with pytest.raises(InvalidQuery) as reused:
        claim(connection, _request("k1", b'{"a": 2}'), ttl=TTL)
    assert reused.value.extra["reason"] == "idempotency_key_reused"
    _age(connection, "k1", 25)
    # Expired: the key is new again (and its old row is gone, so it can be recorded anew).
    assert claim(connection, _request("k1", b'{"a": 2}'), ttl=TTL) is None
    record(connection, _request("k1", b'{"a": 2}'), first, ttl=TTL)


def test_purge_deletes_only_expired_keys(connection: Connection) -> None:
    response = StoredResponse(status=201, body=b"{}", headers=[])
    for key in ("old-1", "old-2", "old-3", "young"):
        claim(connection, _request(key), ttl=TTL)
        record(connection, _request(key), response, ttl=TTL)
    for key in ("old-1", "old-2", "old-3"):
        _age(connection, key, 30)
    assert purge_expired(connection, ttl=TTL, limit=2) == 2
    assert purge_expired(connection, ttl=TTL) == 1
    left = connection.execute(text("SELECT key FROM idempotency_keys WHERE caller = 'user:1'")).scalars().all()
    assert left == ["young"]


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256])
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidQuery):
        check_key(key)


def test_the_fingerprint_is_keyed() -> None:
    body = b'{"email": "a@example.kr", "password": "correct horse battery"}'
    assert request_fingerprint(body, key=KEY) != request_fingerprint(body, key="another key")
    assert request_fingerprint(body, key=KEY) != hashlib.sha256(body).hexdigest()


def test_a_structured_field_string_loses_its_quotes() -> None:
    assert check_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == "8e03978e-40d5-43e8-bc93-6894a57f9324"
