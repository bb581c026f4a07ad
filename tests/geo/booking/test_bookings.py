"""Booking, waiting list promotion in order, cancellation cut-off, staff confirmation, audit and outbox rows,
and the race for the last place over 50 real concurrent connections."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from geo.booking import bookings, emergency
from geo.db import make_engine
from geo.errors import Conflict, Forbidden, InvalidQuery
from tests.booking_util import make_centre, make_slot, make_user, verify

CUTOFF = timedelta(hours=2)


def _parents(conn: Connection, n: int) -> list[int]:
    return [make_user(conn, f"parent{i}@example.kr", "parent") for i in range(n)]


def _status(conn: Connection, booking_id: int) -> str:
    return str(conn.execute(text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}).scalar_one())


def test_waiting_list_is_promoted_in_order(connection: Connection) -> None:
    facility = make_centre(connection, "T-BOOK-1")
    slot = make_slot(connection, facility, places_by_age={"2": 1, "3": 1})
    a, b, c, d = _parents(connection, 4)
    first = bookings.book(connection, slot_id=slot, parent_user_id=a, child_age=2, phone="010-1111-1111")
    assert first["status"] == "booked" and first["waiting_position"] is None
    with pytest.raises(Conflict) as full:
        bookings.book(connection, slot_id=slot, parent_user_id=b, child_age=2, phone="010-2222-2222")
    assert full.value.extra["reason"] == "full"
    second = bookings.book(connection, slot_id=slot, parent_user_id=b, child_age=2, phone="010-2222-2222",
                           join_waitlist=True, lang="vi")
    third = bookings.book(connection, slot_id=slot, parent_user_id=c, child_age=2, phone="010-3333-3333",
                          join_waitlist=True)
    assert (second["status"], second["waiting_position"]) == ("waiting", 1)
    assert (third["status"], third["waiting_position"]) == ("waiting", 2)
    # Places are per age: age 3 still has its own place.
    assert bookings.book(connection, slot_id=slot, parent_user_id=d, child_age=3,
                         phone="010-4444-4444")["status"] == "booked"
    cancelled = bookings.cancel(connection, booking_id=first["id"], actor_user_id=a, as_centre=False, cutoff=CUTOFF)
    assert cancelled["status"] == "cancelled" and cancelled["promoted"] == [second["id"]]
    assert _status(connection, second["id"]) == "booked"
    assert bookings.waiting_position(connection, third["id"]) == 1
    # A waiting parent leaving the list frees no place and promotes nobody.
    left = bookings.cancel(connection, booking_id=third["id"], actor_user_id=c, as_centre=False, cutoff=CUTOFF)
    assert left["promoted"] == []
    # Each step queued its SMS in the same transaction, in the parent's language.
    rows = connection.execute(text(
        "SELECT idempotency_key, lang, body FROM notification_outbox WHERE idempotency_key LIKE :k"),
        {"k": f"booking:{second['id']}:%"}).all()
    assert sorted(r.idempotency_key.split(":")[2] for r in rows) == ["promoted", "waiting"]
    assert all(r.lang == "vi" and "dolbom" in r.body for r in rows)
    audit = connection.execute(text(
        "SELECT action FROM audit_log WHERE entity = 'bookings' AND entity_id = :id ORDER BY id"),
        {"id": str(second["id"])}).scalars().all()
    assert audit == ["booking.wait", "booking.promote"]


def test_cancel_cut_off_owner_and_confirmation(connection: Connection) -> None:
    facility = make_centre(connection, "T-BOOK-2")
    soon = make_slot(connection, facility, places_by_age={"1": 2}, starts_in=timedelta(hours=1))
    a, b = _parents(connection, 2)
    staff = make_user(connection, "staff@example.kr", "centre_staff", (facility,))
    booking = bookings.book(connection, slot_id=soon, parent_user_id=a, child_age=1, phone="010-1111-1111")
    with pytest.raises(Forbidden):
        bookings.cancel(connection, booking_id=booking["id"], actor_user_id=b, as_centre=False, cutoff=CUTOFF)
    with pytest.raises(Conflict) as late:
        bookings.cancel(connection, booking_id=booking["id"], actor_user_id=a, as_centre=False, cutoff=CUTOFF)
    assert late.value.extra["reason"] == "cutoff"
    # Three hours before the start the same cancellation is in time.
    early = datetime.now(UTC) - timedelta(hours=2)
    confirmed = bookings.confirm(connection, booking_id=booking["id"], actor_user_id=staff)
    assert confirmed["status"] == "confirmed"
    with pytest.raises(Conflict):
        bookings.confirm(connection, booking_id=booking["id"], actor_user_id=staff)
    assert bookings.cancel(connection, booking_id=booking["id"], actor_user_id=a, as_centre=False, cutoff=CUTOFF,
                           now=early)["status"] == "cancelled"
    with pytest.raises(InvalidQuery):
        bookings.book(connection, slot_id=soon, parent_user_id=a, child_age=4, phone="010-1111-1111")
    with pytest.raises(InvalidQuery):
        bookings.book(connection, slot_id=soon, parent_user_id=a, child_age=1, phone="not a phone")
    again = bookings.book(connection, slot_id=soon, parent_user_id=a, child_age=1, phone="010-1111-1111",
                          child_name="지우")
    with pytest.raises(Conflict) as dup:
        bookings.book(connection, slot_id=soon, parent_user_id=a, child_age=1, phone="010-1111-1111",
                      child_name="지우")
    assert dup.value.extra["reason"] == "duplicate"
    # A centre may withdraw a booking at any time.
    assert bookings.cancel(connection, booking_id=again["id"], actor_user_id=staff, as_centre=True,
                           cutoff=CUTOFF)["status"] == "cancelled"


@pytest.fixture(scope="module")
def race_engine(make_database) -> Engine:  # type: ignore[no-untyped-def]
    """A database of its own: the race needs committed rows seen by 50 connections."""
    return make_database("booking_race")  # type: ignore[no-any-return]


def test_fifty_parents_race_for_the_last_place(race_engine: Engine) -> None:
    with race_engine.begin() as conn:
        facility = make_centre(conn, "T-RACE-1")
        slot = make_slot(conn, facility, places_by_age={"2": 3})
        holders = _parents(conn, 2)
        parents = [make_user(conn, f"racer{i}@example.kr", "parent") for i in range(50)]
    # Two of three places are taken already: one is left.
    with race_engine.begin() as conn:
        for parent in holders:
            bookings.book(conn, slot_id=slot, parent_user_id=parent, child_age=2, phone="010-0000-0000")
    # One real connection per parent, all open before the barrier releases them together.
    engine = make_engine(race_engine.url.render_as_string(hide_password=False), pool_size=55, max_overflow=0)
    barrier = threading.Barrier(len(parents))
    outcomes: dict[int, str] = {}
    lock = threading.Lock()

    def attempt(index: int, parent: int) -> None:
        wants_list = index % 2 == 0
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
            barrier.wait()
            try:
                with conn.begin():
                    result = bookings.book(conn, slot_id=slot, parent_user_id=parent, child_age=2,
                                           phone=f"010-9999-{index:04d}", join_waitlist=wants_list)
                outcome = result["status"]
            except Conflict as exc:
                outcome = f"refused:{exc.extra['reason']}"
        with lock:
            outcomes[parent] = outcome

    threads = [threading.Thread(target=attempt, args=(i, p)) for i, p in enumerate(parents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    values = list(outcomes.values())
    assert len(values) == 50
    assert values.count("booked") == 1
    winner = next(p for p, o in outcomes.items() if o == "booked")
    joiners = {p for i, p in enumerate(parents) if i % 2 == 0}
    losers = set(parents) - {winner}
    assert {p for p in losers if outcomes[p] == "waiting"} == losers & joiners
    assert {p for p in losers if outcomes[p] == "refused:full"} == losers - joiners
    with race_engine.connect() as conn:
        active = conn.execute(text("SELECT count(*) FROM bookings WHERE slot_id = :s AND status = 'booked'"),
                              {"s": slot}).scalar_one()
        positions = conn.execute(text(
            "SELECT id FROM bookings WHERE slot_id = :s AND status = 'waiting' ORDER BY id"), {"s": slot}).scalars()
        waiting_ids = list(positions)
        messages = conn.execute(text("SELECT count(*) FROM notification_outbox")).scalar_one()
        assert [bookings.waiting_position(conn, i) for i in waiting_ids] == list(range(1, len(waiting_ids) + 1))
    # Exactly the three places are taken; a refused attempt left no booking and no message behind.
    assert active == 3
    assert messages == 2 + 1 + len(losers & joiners)


def test_an_unverified_parent_may_not_book_or_ask_for_emergency_care(connection: Connection) -> None:
    """본인인증 comes first (as the seed data books only verified parents): nothing is written without it."""
    facility = make_centre(connection, "T-BOOK-UNV")
    slot = make_slot(connection, facility, places_by_age={"2": 1})
    parent = make_user(connection, "unverified@example.kr", "parent", verified=False)
    with pytest.raises(Forbidden) as refused:
        bookings.book(connection, slot_id=slot, parent_user_id=parent, child_age=2, phone="010-1111-1111")
    assert refused.value.extra["reason"] == "identity_not_verified"
    with pytest.raises(Forbidden) as refused:
        emergency.create_request(connection, parent_user_id=parent, lat=37.556, lon=126.91, child_age=2,
                                 phone="010-1111-1111", lang="ko", radius_m=1000)
    assert refused.value.extra["reason"] == "identity_not_verified"
    written = connection.execute(text(
        "SELECT (SELECT count(*) FROM bookings WHERE parent_user_id = :p) + "
        "(SELECT count(*) FROM emergency_requests WHERE parent_user_id = :p)"), {"p": parent}).scalar_one()
    assert written == 0
    verify(connection, parent, name="홍부모")
    assert bookings.book(connection, slot_id=slot, parent_user_id=parent, child_age=2,
                         phone="010-1111-1111")["status"] == "booked"
