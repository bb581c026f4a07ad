"""Booking a slot, the waiting list and its promotion, cancellation with a cut-off, confirmation by staff.

Every write locks the slot row (``SELECT ... FOR UPDATE``) first, so that concurrent bookings of the same slot
are serialised: the count of active bookings a transaction sees is final until it commits, and the last place
goes to exactly one of them. Each change is audited and queues its SMS in the same transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.auth.identity import require_verified
from geo.booking.outbox import enqueue
from geo.booking.templates import check_lang
from geo.domain import SEOUL_TZ
from geo.errors import Conflict, Forbidden, IllegalTransition, InvalidQuery, NotFound
from geo.validation import personal_text

ACTIVE = ("booked", "confirmed")
NEW = "new"  # a booking not yet written
STATUSES = ("booked", "waiting", "confirmed", "cancelled")
# The one table of a booking's life: (status, event) -> next status. Nothing else changes a booking's status;
# tests/geo/booking/test_booking_stateful.py drives random sequences of events through it.
TRANSITIONS: dict[tuple[str, str], str] = {
    (NEW, "book"): "booked",  # a free place for the age
    (NEW, "wait"): "waiting",  # full, and the parent joins the waiting list
    ("waiting", "promote"): "booked",  # a place freed up, in waiting-list order
    ("booked", "confirm"): "confirmed",  # the centre's staff
    ("booked", "cancel"): "cancelled",
    ("confirmed", "cancel"): "cancelled",
    ("waiting", "cancel"): "cancelled",  # leaving the waiting list
}


def next_status(status: str, event: str) -> str:
    """The status ``event`` moves a booking in ``status`` to; ``IllegalTransition`` (a 409, ``reason`` the
    current status) when the table has no such move."""
    target = TRANSITIONS.get((status, event))
    if target is None:
        raise IllegalTransition(f"a booking that is {status} cannot {event}", state=status, event=event,
                                reason=status)
    return target


def _move(conn: Connection, booking_id: int, status: str, event: str) -> str:
    """Write the table's move of booking ``booking_id`` from ``status`` (the slot row is locked by the caller)."""
    target = next_status(status, event)
    moved = conn.execute(text("UPDATE bookings SET status = :to, updated_at = now() WHERE id = :id AND status = :from "
                              "RETURNING id"), {"to": target, "id": booking_id, "from": status}).scalar()
    if moved is None:  # cannot happen under the slot lock; refuse rather than write over another change
        raise IllegalTransition(f"booking {booking_id} changed while it was read", state=status, event=event,
                                reason="changed")
    return target
PHONE_RE = re.compile(r"^\+?[0-9][0-9-]{6,18}[0-9]$")


def check_phone(phone: str) -> str:
    """A phone number of digits (``010-1234-5678`` or ``+821012345678``), never a 주민등록번호."""
    cleaned = personal_text(phone, param="phone") or ""
    if not PHONE_RE.match(cleaned):
        raise InvalidQuery("phone must be a number such as 010-1234-5678", param="phone")
    return cleaned


def parent_phone(conn: Connection, user_id: int) -> str:
    """The number texts about a parent's bookings and emergency requests go to: the phone of their 본인인증
    (``users.verified_phone``), never a number typed into a request; ``""`` (no texts) when the verification
    returned none."""
    phone = conn.execute(text("SELECT verified_phone FROM users WHERE id = :u"), {"u": user_id}).scalar()
    return str(phone or "")


def _when(starts_at: datetime, ends_at: datetime) -> str:
    a, b = starts_at.astimezone(SEOUL_TZ), ends_at.astimezone(SEOUL_TZ)
    return f"{a:%Y-%m-%d %H:%M}-{b:%H:%M}"


def _slot_for_update(conn: Connection, slot_id: int) -> dict[str, Any]:
    row = conn.execute(text(
        "SELECT s.id, s.facility_id, s.service, s.starts_at, s.ends_at, s.places_by_age, s.cancelled, "
        "f.name AS facility_name, f.code AS facility_code FROM booking_slots s JOIN facilities f "
        "ON f.id = s.facility_id WHERE s.id = :id FOR UPDATE OF s"), {"id": slot_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no slot {slot_id}", param="slot_id")
    return dict(row)


def _active_count(conn: Connection, slot_id: int, age: int) -> int:
    return int(conn.execute(text(
        "SELECT count(*) FROM bookings WHERE slot_id = :s AND child_age = :a AND status IN ('booked', 'confirmed')"),
        {"s": slot_id, "a": age}).scalar_one())


def _booking_row(conn: Connection, booking_id: int) -> dict[str, Any]:
    row = conn.execute(text(
        "SELECT b.*, s.facility_id FROM bookings b JOIN booking_slots s ON s.id = b.slot_id WHERE b.id = :id"),
        {"id": booking_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no booking {booking_id}", param="booking_id")
    return dict(row)


def waiting_position(conn: Connection, booking_id: int) -> int | None:
    """1-based place of a waiting booking in its slot's waiting list for its age (None when not waiting)."""
    return conn.execute(text("""
        SELECT 1 + (SELECT count(*) FROM bookings o WHERE o.slot_id = b.slot_id AND o.child_age = b.child_age
                    AND o.status = 'waiting' AND o.id < b.id)
        FROM bookings b WHERE b.id = :id AND b.status = 'waiting'
    """), {"id": booking_id}).scalar()


def _public(conn: Connection, booking_id: int) -> dict[str, Any]:
    row = conn.execute(text("""
        SELECT b.id, b.slot_id, b.parent_user_id, b.child_age, b.child_name, b.phone, b.lang, b.status,
               b.created_at, b.updated_at, s.starts_at, s.ends_at, s.service, f.code AS facility_code,
               f.name AS facility_name
        FROM bookings b JOIN booking_slots s ON s.id = b.slot_id JOIN facilities f ON f.id = s.facility_id
        WHERE b.id = :id
    """), {"id": booking_id}).mappings().one()
    out = dict(row)
    out["waiting_position"] = waiting_position(conn, booking_id)
    return out


def _notify(conn: Connection, booking: dict[str, Any], slot: dict[str, Any], event: str, **extra: object) -> None:
    if not booking["phone"]:
        return  # no verified phone: no text
    enqueue(conn, key=f"booking:{booking['id']}:{event}", recipient=booking["phone"],
            lang=booking["lang"], template=event, centre=slot["facility_name"],
            when=_when(slot["starts_at"], slot["ends_at"]), booking_id=booking["id"], **extra)


def book(conn: Connection, *, slot_id: int, parent_user_id: int, child_age: int, phone: str | None = None,
         lang: str = "ko",
         child_name: str | None = None, join_waitlist: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Book a place in a slot for a child of class age ``child_age``.

    Returns the booking (``status`` ``booked``, or ``waiting`` with its ``waiting_position`` when the slot is
    full and ``join_waitlist``). Its texts go to the parent's verified phone (``parent_phone``); ``phone`` is
    only checked for shape and otherwise ignored (docs/accounts.md).

    Raises
    ------
    Forbidden
        The parent has not verified their identity (본인인증), ``reason="identity_not_verified"``.
    Conflict
        The slot is full (and no waiting list was asked for), has ended or was withdrawn, or this parent
        already holds a booking of the slot for a child of the same name and age (unnamed children are never
        duplicates: twins).
    InvalidQuery
        The slot has no places for that age, or a bad phone/lang.
    """
    require_verified(conn, parent_user_id, action="book_care")
    if phone:
        check_phone(phone)
    phone, lang = parent_phone(conn, parent_user_id), check_lang(lang)
    child_name = personal_text(child_name, param="child_name")
    if child_age not in range(6):
        raise InvalidQuery(f"child_age must be 0 to 5 (got {child_age})", param="child_age")
    now = now or datetime.now(UTC)
    slot = _slot_for_update(conn, slot_id)
    places = int(slot["places_by_age"].get(str(child_age), 0))
    if places == 0:
        raise InvalidQuery(f"slot {slot_id} has no places for age {child_age}", param="child_age")
    if slot["cancelled"] or slot["ends_at"] <= now:
        raise Conflict(f"slot {slot_id} is no longer bookable", reason="closed")
    # Only a named child can be booked twice by mistake: two unnamed children of one age are twins (or
    # siblings), not a duplicate. A retried request is recognised by its Idempotency-Key (api/idempotency.py).
    duplicate = None if child_name is None else conn.execute(text(
        "SELECT id FROM bookings WHERE slot_id = :s AND parent_user_id = :p AND status <> 'cancelled' "
        "AND child_age = :a AND child_name = :n"),
        {"s": slot_id, "p": parent_user_id, "a": child_age, "n": child_name}).scalar()
    if duplicate is not None:
        raise Conflict(f"you already hold booking {duplicate} of this slot for this child", reason="duplicate",
                       booking_id=int(duplicate))
    if _active_count(conn, slot_id, child_age) < places:
        status = next_status(NEW, "book")
    elif join_waitlist:
        status = next_status(NEW, "wait")
    else:
        raise Conflict(f"slot {slot_id} has no free place for age {child_age}; join its waiting list instead",
                       reason="full")
    booking_id = int(conn.execute(text(
        "INSERT INTO bookings (slot_id, parent_user_id, child_age, child_name, phone, lang, status) "
        "VALUES (:s, :p, :a, :n, :phone, :lang, :status) RETURNING id"),
        {"s": slot_id, "p": parent_user_id, "a": child_age, "n": child_name, "phone": phone, "lang": lang,
         "status": status}).scalar_one())
    booking = _public(conn, booking_id)
    audit(conn, actor_user_id=parent_user_id, action=f"booking.{'create' if status == 'booked' else 'wait'}",
          entity="bookings", entity_id=booking_id, before=None,
          after={"slot_id": slot_id, "child_age": child_age, "status": status})
    if status == "booked":
        _notify(conn, booking, slot, "booked")
    else:
        _notify(conn, booking, slot, "waiting", position=booking["waiting_position"])
    return booking


def _promote(conn: Connection, slot: dict[str, Any], age: int, actor_user_id: int | None) -> list[int]:
    """Move the oldest waiting bookings of ``age`` into the places now free (slot row already locked)."""
    free = int(slot["places_by_age"].get(str(age), 0)) - _active_count(conn, slot["id"], age)
    promoted: list[int] = []
    if free <= 0:
        return promoted
    ids = conn.execute(text(
        "SELECT id FROM bookings WHERE slot_id = :s AND child_age = :a AND status = 'waiting' ORDER BY id LIMIT :n"),
        {"s": slot["id"], "a": age, "n": free}).scalars().all()
    for booking_id in ids:
        after = _move(conn, booking_id, "waiting", "promote")
        audit(conn, actor_user_id=actor_user_id, action="booking.promote", entity="bookings", entity_id=booking_id,
              before={"status": "waiting"}, after={"status": after})
        _notify(conn, _public(conn, booking_id), slot, "promoted")
        promoted.append(int(booking_id))
    return promoted


def cancel(conn: Connection, *, booking_id: int, actor_user_id: int, as_centre: bool,
           cutoff: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """Cancel a booking (or leave a waiting list) and promote the waiting list in order.

    ``as_centre``: the centre withdraws it (no cut-off); otherwise ``actor_user_id`` must be the parent who
    booked and the slot must start more than ``cutoff`` from ``now``.
    """
    now = now or datetime.now(UTC)
    booking = _booking_row(conn, booking_id)
    slot = _slot_for_update(conn, booking["slot_id"])
    booking = _booking_row(conn, booking_id)  # re-read under the slot lock
    if not as_centre:
        if booking["parent_user_id"] != actor_user_id:
            raise Forbidden("only the parent who booked may cancel this booking")
        if booking["status"] != "waiting" and slot["starts_at"] - cutoff < now:
            raise Conflict(f"bookings can be cancelled until {cutoff.total_seconds() / 3600:g} hours before the "
                           "start; call the centre", reason="cutoff")
    before = booking["status"]
    after = _move(conn, booking_id, before, "cancel")
    audit(conn, actor_user_id=actor_user_id, action="booking.cancel", entity="bookings", entity_id=booking_id,
          before={"status": before}, after={"status": after, "by_centre": as_centre})
    _notify(conn, booking, slot, "cancelled")
    out = _public(conn, booking_id)
    out["promoted"] = _promote(conn, slot, booking["child_age"], actor_user_id) if before in ACTIVE else []
    return out


def confirm(conn: Connection, *, booking_id: int, actor_user_id: int) -> dict[str, Any]:
    """Centre staff confirm a booked place (``booked`` → ``confirmed``)."""
    booking = _booking_row(conn, booking_id)
    slot = _slot_for_update(conn, booking["slot_id"])
    booking = _booking_row(conn, booking_id)
    after = _move(conn, booking_id, booking["status"], "confirm")
    audit(conn, actor_user_id=actor_user_id, action="booking.confirm", entity="bookings", entity_id=booking_id,
          before={"status": "booked"}, after={"status": after})
    _notify(conn, booking, slot, "confirmed")
    return _public(conn, booking_id)


def booking_facility_id(conn: Connection, booking_id: int) -> int:
    """The centre a booking is at (for the authorisation check)."""
    return int(_booking_row(conn, booking_id)["facility_id"])


def list_for_parent(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """A parent's bookings, newest first."""
    ids = conn.execute(text("SELECT id FROM bookings WHERE parent_user_id = :p ORDER BY id DESC"),
                       {"p": parent_user_id}).scalars().all()
    return [_public(conn, i) for i in ids]


def list_for_centre(conn: Connection, *, facility_id: int, status: str | None = None) -> list[dict[str, Any]]:
    """A centre's bookings by slot start, then booking order."""
    ids = conn.execute(text(
        "SELECT b.id FROM bookings b JOIN booking_slots s ON s.id = b.slot_id WHERE s.facility_id = :f "
        "AND (CAST(:status AS text) IS NULL OR b.status = :status) ORDER BY s.starts_at, b.id"),
        {"f": facility_id, "status": status}).scalars().all()
    return [_public(conn, i) for i in ids]
