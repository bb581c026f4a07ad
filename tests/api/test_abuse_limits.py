"""Abuse limits (issue #20): sign-ups per address, bookings and emergency requests per account, per verified
person and per address, texts per destination number; each refusal a 429 problem with Retry-After. Texts go
only to the parent's verified phone."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from geo.auth.limits import Limit, hit
from geo.errors import RateLimited
from geo.privacy.retention import purge
from geo.settings import Settings
from tests.booking_util import (
    ORIGIN_LAT,
    ORIGIN_LON,
    bearer,
    make_centre,
    make_slot,
    make_user,
    verified_phone_of,
    verify,
)
from tests.dbutil import client_on
from tests.problem_util import problem as _problem

PASSWORD = "correct horse battery"


def _limited(resp: object, limit: str) -> dict:
    body = _problem(resp, 429)  # type: ignore[arg-type]
    assert body["limit"] == limit, body
    retry = int(resp.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 1 <= retry <= 86400 + 1 and body["retry_after_s"] == retry
    return body


def test_fixed_window_counts_and_refuses_with_the_rest_of_the_window(conn: Connection) -> None:
    limit = Limit("test_bucket", 2, 3600)
    at = datetime(2026, 12, 6, 10, 59, 30, tzinfo=UTC)
    assert hit(conn, limit, "k", now=at) == 1
    assert hit(conn, limit, "other", now=at) == 1
    assert hit(conn, limit, "k", now=at) == 2
    with pytest.raises(RateLimited) as refused:
        hit(conn, limit, "k", now=at)
    assert refused.value.extra["retry_after_s"] == 31
    # The next window starts afresh (and the key's old window is dropped).
    assert hit(conn, limit, "k", now=datetime(2026, 12, 6, 11, 0, 1, tzinfo=UTC)) == 1
    stored = conn.execute(text("SELECT key_hash FROM rate_limits WHERE bucket = 'test_bucket'")).scalars().all()
    assert len(stored) == 2 and "k" not in stored and all(len(h) == 64 for h in stored)
    assert hit(conn, limit, None, now=at) == 0  # no key: not counted


def test_signups_from_one_address_are_limited(settings: Settings, connection: Connection) -> None:
    limited = settings.updated(DOLBOM_LIMIT_SIGNUP_PER_IP_HOUR=3)
    client = client_on(limited, connection)
    for i in range(3):
        resp = client.post("/auth/signup", json={"email": f"s{i}@example.kr", "password": PASSWORD})
        assert resp.status_code < 300, resp.text
    _limited(client.post("/auth/signup", json={"email": "s9@example.kr", "password": PASSWORD}), "signup_ip_hour")
    assert connection.execute(text("SELECT count(*) FROM users WHERE email = 's9@example.kr'")).scalar_one() == 0


def _booking_cast(conn: Connection, settings: Settings) -> tuple[int, int, dict[str, str]]:
    centre = make_centre(conn, "T-ABUSE-1", lon=ORIGIN_LON + 0.003, lat=ORIGIN_LAT)
    parent = make_user(conn, "abuser@example.kr", "parent")
    return centre, parent, bearer(conn, settings, parent)


def test_a_fresh_account_cannot_take_every_place_of_a_slot_at_once(settings: Settings,
                                                                    connection: Connection) -> None:
    """The report: one account booked all 5 places of a slot within a second."""
    centre, parent, headers = _booking_cast(connection, settings)
    client = client_on(settings.updated(DOLBOM_LIMIT_BOOKINGS_PER_ACCOUNT_HOUR=2), connection)
    slot = make_slot(connection, centre, places_by_age={"2": 5})
    for i in range(2):
        made = client.post("/bookings", json={"slot_id": slot, "child_age": 2, "child_name": f"아이{i}"},
                           headers=headers)
        assert made.status_code == 201, made.text
    _limited(client.post("/bookings", json={"slot_id": slot, "child_age": 2, "child_name": "아이9"},
                         headers=headers), "booking_account_hour")
    assert connection.execute(text("SELECT count(*) FROM bookings WHERE slot_id = :s"),
                              {"s": slot}).scalar_one() == 2


def test_one_person_with_two_accounts_shares_one_allowance(settings: Settings, connection: Connection) -> None:
    """A person whose verification moved to a new account (an admin reset it on the first) keeps the count of
    the first: the limit is per verified person (CI hash), not per account."""
    _, first, headers = _booking_cast(connection, settings)
    client = client_on(settings.updated(DOLBOM_LIMIT_EMERGENCY_PER_PERSON_DAY=1), connection)
    body = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "radius_m": 1000}
    assert client.post("/bookings/emergency", json=body, headers=headers).status_code == 201
    connection.execute(text("UPDATE users SET ci_hash = NULL WHERE id = :u"), {"u": first})
    second = make_user(connection, "abuser2@example.kr", "parent", verified=False)
    verify(connection, second, name=f"부모{first}")  # the same person: the same CI
    _limited(client.post("/bookings/emergency", json=body, headers=bearer(connection, settings, second)),
             "emergency_person_day")
    someone_else = make_user(connection, "other@example.kr", "parent")
    assert client.post("/bookings/emergency", json=body, headers=bearer(connection, settings, someone_else)
                       ).status_code == 201


def test_emergency_requests_and_addresses_are_limited(settings: Settings, connection: Connection) -> None:
    _, parent, headers = _booking_cast(connection, settings)
    other = make_user(connection, "other@example.kr", "parent")
    client = client_on(settings.updated(DOLBOM_LIMIT_EMERGENCY_PER_ACCOUNT_HOUR=1,
                                        DOLBOM_LIMIT_EMERGENCY_PER_IP_HOUR=2), connection)
    body = {"lat": ORIGIN_LAT, "lon": ORIGIN_LON, "child_age": 2, "radius_m": 1000}
    assert client.post("/bookings/emergency", json=body, headers=headers).status_code == 201
    _limited(client.post("/bookings/emergency", json=body, headers=headers), "emergency_account_hour")
    other_headers = bearer(connection, settings, other)
    assert client.post("/bookings/emergency", json=body, headers=other_headers).status_code == 201
    third = make_user(connection, "third@example.kr", "parent")
    _limited(client.post("/bookings/emergency", json=body, headers=bearer(connection, settings, third)),
             "emergency_ip_hour")
    assert parent


def test_texts_go_to_the_verified_phone_only(settings: Settings, connection: Connection) -> None:
    """The report: texts were queued to an arbitrary number given in the request. The request's phone is
    ignored; the text goes to the phone of the parent's 본인인증."""
    centre, parent, headers = _booking_cast(connection, settings)
    client = client_on(settings, connection)
    slot = make_slot(connection, centre, places_by_age={"2": 5})
    made = client.post("/bookings", json={"slot_id": slot, "child_age": 2, "phone": "010-9999-0000"},
                       headers=headers)
    assert made.status_code == 201, made.text
    recipients = connection.execute(text("SELECT recipient FROM notification_outbox WHERE idempotency_key = :k"),
                                    {"k": f"booking:{made.json()['id']}:booked"}).scalars().all()
    assert recipients == [verified_phone_of(parent)] and made.json()["phone"] == verified_phone_of(parent)
    assert connection.execute(text("SELECT count(*) FROM notification_outbox WHERE recipient = '010-9999-0000'")
                              ).scalar_one() == 0
    # A malformed phone is still refused (it may be a 주민등록번호).
    assert _problem(client.post("/bookings", json={"slot_id": slot, "child_age": 2, "phone": "x"},
                                headers=headers), 422)["param"] == "phone"


def test_texts_to_one_number_have_a_daily_cap(settings: Settings, connection: Connection) -> None:
    centre, parent, headers = _booking_cast(connection, settings)
    client = client_on(settings.updated(DOLBOM_LIMIT_TEXTS_PER_PHONE_DAY=2), connection)
    slot = make_slot(connection, centre, places_by_age={"2": 5})
    for i in range(2):
        assert client.post("/bookings", json={"slot_id": slot, "child_age": 2, "child_name": f"아이{i}"},
                           headers=headers).status_code == 201
    _limited(client.post("/bookings", json={"slot_id": slot, "child_age": 2, "child_name": "아이9"},
                         headers=headers), "texts_phone_day")
    assert connection.execute(text("SELECT count(*) FROM notification_outbox WHERE recipient = :p"),
                              {"p": verified_phone_of(parent)}).scalar_one() == 2


def test_the_limit_holds_across_concurrent_transactions(engine: Engine) -> None:
    """Workers are separate processes with their own connections: 12 concurrent hits on a limit of 5, each in
    its own committed transaction, let exactly 5 through."""
    bucket = f"test_concurrent_{uuid.uuid4().hex[:8]}"
    limit = Limit(bucket, 5, 3600)
    barrier = threading.Barrier(12)

    def one() -> bool:
        with engine.connect() as conn:
            barrier.wait()
            try:
                with conn.begin():
                    hit(conn, limit, "same key")
            except RateLimited:
                return False
            return True

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lambda _: one(), range(12)))
        assert results.count(True) == 5
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM rate_limits WHERE bucket = :b"), {"b": bucket})


def test_privacy_purge_drops_old_windows(settings: Settings, connection: Connection) -> None:
    now = datetime.now(UTC)
    hit(connection, Limit("test_purge", 5, 3600), "old", now=now - timedelta(days=3))
    hit(connection, Limit("test_purge", 5, 3600), "new", now=now)
    purge(connection, settings, now=now)
    assert connection.execute(text("SELECT count(*) FROM rate_limits WHERE bucket = 'test_purge'")).scalar_one() == 1
