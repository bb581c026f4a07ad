"""The life of an entry outside offers: applications (limits from the year's rules), withdrawal, keeping an entry
after admission elsewhere, yearly renewal and dropping of entries not renewed, administrators' corrections, and
the parent's notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.chain import append_event
from geo.admission.children import child_of, verified_parent
from geo.admission.common import ACTIVE, SEOUL, facility_by_code, lock_centre, new_id, resolve_now
from geo.admission.queue import age_class_in, record_ranks
from geo.admission.rules import childcare_year, rules_for
from geo.errors import Conflict, InvalidQuery, NotFound


def apply(conn: Connection, *, parent_user_id: int, child_id: int, facility_code: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Apply for a child to a centre (the 반 of the current 보육연도); limits from the year's rules."""
    at = resolve_now(now)
    verified_parent(conn, parent_user_id)
    child = child_of(conn, child_id, parent_user_id, lock=True)  # serialises one child's applications
    facility = facility_by_code(conn, facility_code)
    if facility.status != "active":
        raise Conflict(f"centre {facility_code} is not operating", param="code", value=facility_code)
    year = childcare_year(at.astimezone(SEOUL).date())
    rules = rules_for(year)
    age_class = age_class_in(year, child.birth_date)
    if not 0 <= age_class <= 5:
        raise InvalidQuery(f"a child born {child.birth_date} has no 0-5세 class in {year}", param="child_id",
                           value=child_id)
    active = conn.execute(text("SELECT facility_id FROM waitlist_entries WHERE child_id = :c "
                               "AND status IN ('waiting', 'offered')"), {"c": child.id}).scalars().all()
    limit = rules.max_applications_if_enrolled if child.enrolled else rules.max_applications
    if facility.id in active:
        raise Conflict(f"the child already has an active entry at {facility_code}", param="code")
    if len(active) >= limit:
        raise Conflict(f"at most {limit} active applications per child", limit=limit)
    lock_centre(conn, facility.id)
    public_id = new_id()
    entry_id = conn.execute(text("""
        INSERT INTO waitlist_entries (public_id, child_id, facility_id, year, age_class, preference, applied_at,
                                      status, status_at)
        VALUES (:pid, :c, :f, :y, :a, :pref, :at, 'waiting', :at) RETURNING id
    """), {"pid": public_id, "c": child.id, "f": facility.id, "y": year, "a": age_class, "pref": len(active) + 1,
           "at": at}).scalar_one()
    append_event(conn, facility.id, {"type": "apply", "entry": public_id, "child": child.public_id, "year": year,
                                     "age_class": age_class, "applied_at": at.isoformat()}, now=at)
    record_ranks(conn, facility.id, year, age_class, now=at)
    return entry_view(conn, entry_id)


def entry_view(conn: Connection, entry_id: int) -> dict[str, Any]:
    """An entry as its parent sees it."""
    row = conn.execute(text("""SELECT e.public_id AS entry, f.code AS centre, e.child_id, e.year, e.age_class,
                                      e.preference, e.applied_at, e.status, e.lapse_at
                               FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                               WHERE e.id = :e"""), {"e": entry_id}).mappings().one()
    return dict(row)


def own_entry(conn: Connection, entry_public_id: str, parent_user_id: int) -> Any:
    row = conn.execute(text("""SELECT e.id, e.public_id, e.facility_id, e.year, e.age_class, e.status, e.child_id
                               FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                               WHERE e.public_id = :pid AND ch.parent_user_id = :p FOR UPDATE OF e"""),
                       {"pid": entry_public_id, "p": parent_user_id}).first()
    if row is None:
        raise NotFound(f"no entry {entry_public_id} of yours", param="entry", value=entry_public_id)
    return row


def set_status(conn: Connection, entry: Any, status: str, *, at: datetime, event: dict[str, Any]) -> None:
    conn.execute(text("UPDATE waitlist_entries SET status = :s, status_at = :at WHERE id = :e"),
                 {"s": status, "at": at, "e": entry.id})
    append_event(conn, entry.facility_id, {**event, "entry": entry.public_id, "status": status}, now=at)
    record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)


def withdraw(conn: Connection, *, parent_user_id: int, entry_public_id: str,
             now: datetime | None = None) -> dict[str, Any]:
    """The parent withdraws an active entry (an open offer on it is declined)."""
    at = resolve_now(now)
    entry = own_entry(conn, entry_public_id, parent_user_id)
    if entry.status not in ACTIVE:
        raise Conflict(f"entry {entry_public_id} is {entry.status}, not active", state=entry.status)
    conn.execute(text("UPDATE waitlist_offers SET status = 'declined', answered_at = :at "
                      "WHERE entry_id = :e AND status = 'open'"), {"e": entry.id, "at": at})
    set_status(conn, entry, "withdrawn", at=at, event={"type": "withdraw"})
    return entry_view(conn, entry.id)


def keep_entries(conn: Connection, *, parent_user_id: int, entry_public_id: str) -> dict[str, Any]:
    """Keep an entry that would lapse after the child's admission elsewhere."""
    entry = own_entry(conn, entry_public_id, parent_user_id)
    conn.execute(text("UPDATE waitlist_entries SET lapse_at = NULL WHERE id = :e"), {"e": entry.id})
    return entry_view(conn, entry.id)


def renew(conn: Connection, *, parent_user_id: int, entry_public_id: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Renew a waiting entry for the next 보육연도 (its 반 age moves up by one); ranks keep the application time."""
    at = resolve_now(now)
    entry = own_entry(conn, entry_public_id, parent_user_id)
    target = childcare_year(at.astimezone(SEOUL).date()) + 1
    if entry.status != "waiting" or entry.year >= target:
        raise Conflict(f"entry {entry_public_id} cannot be renewed for {target}", state=entry.status)
    if entry.age_class + (target - entry.year) > 5:
        raise Conflict("the child is past the 5세 class next year", param="entry")
    conn.execute(text("UPDATE waitlist_entries SET year = :y, age_class = age_class + :d WHERE id = :e"),
                 {"y": target, "d": target - entry.year, "e": entry.id})
    append_event(conn, entry.facility_id, {"type": "renew", "entry": entry.public_id, "year": target}, now=at)
    record_ranks(conn, entry.facility_id, target, entry.age_class + target - entry.year, now=at)
    record_ranks(conn, entry.facility_id, entry.year, entry.age_class, now=at)
    return entry_view(conn, entry.id)


def drop_unrenewed(conn: Connection, *, year: int, now: datetime | None = None) -> int:
    """At the start of 보육연도 ``year``: waiting entries of earlier years not renewed are dropped, with a notice
    to the parent. Returns how many."""
    at = resolve_now(now)
    rows = conn.execute(text("""SELECT e.id, e.public_id, e.facility_id, e.year, e.age_class, e.status, e.child_id,
                                       ch.parent_user_id, f.code
                                FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                                JOIN facilities f ON f.id = e.facility_id
                                WHERE e.status = 'waiting' AND e.year < :y ORDER BY e.facility_id, e.id
                                FOR UPDATE OF e"""), {"y": year}).all()
    for r in rows:
        set_status(conn, r, "dropped", at=at, event={"type": "drop_unrenewed", "year": year})
        notice(conn, r.parent_user_id, r.id, "dropped",
                f"your entry at {r.code} was not renewed for {year} and has been dropped")
    return len(rows)


def notice(conn: Connection, parent_user_id: int, entry_id: int | None, kind: str, message: str) -> None:
    conn.execute(text("INSERT INTO waitlist_notices (parent_user_id, entry_id, kind, message) "
                      "VALUES (:p, :e, :k, :m)"), {"p": parent_user_id, "e": entry_id, "k": kind, "m": message})


def notices(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """The parent's notices, newest first."""
    rows = conn.execute(text("SELECT kind, message, created_at FROM waitlist_notices WHERE parent_user_id = :p "
                             "ORDER BY id DESC"), {"p": parent_user_id}).mappings().all()
    return [dict(r) for r in rows]


def correct(conn: Connection, *, entry_public_id: str, status: str, reason: str, actor_user_id: int,
            now: datetime | None = None) -> dict[str, Any]:
    """An administrator's correction of an entry's status, with its reason, logged on the chain."""
    at = resolve_now(now)
    if status not in ("waiting", "withdrawn", "dropped", "lapsed"):
        raise InvalidQuery(f"a correction sets waiting, withdrawn, dropped or lapsed, not {status!r}", param="status")
    if not reason.strip():
        raise InvalidQuery("a correction needs a reason", param="reason")
    entry = conn.execute(text("SELECT id, public_id, facility_id, year, age_class, status, child_id "
                              "FROM waitlist_entries WHERE public_id = :pid FOR UPDATE"),
                         {"pid": entry_public_id}).first()
    if entry is None:
        raise NotFound(f"no entry {entry_public_id}", param="entry", value=entry_public_id)
    closed = None
    if entry.status == "offered" and status != "offered":
        # The offer goes with the entry's state: left open it would block the place and could still be accepted.
        closed = conn.execute(text("UPDATE waitlist_offers SET status = :s, answered_at = :at "
                                   "WHERE entry_id = :e AND status = 'open' RETURNING id"),
                              {"s": "declined" if status in ("waiting", "withdrawn") else "expired", "at": at,
                               "e": entry.id}).scalar_one_or_none()
    set_status(conn, entry, status, at=at, event={"type": "correction", "reason": reason.strip(),
                                                   "by": actor_user_id, "was": entry.status,
                                                   **({"offer_closed": closed} if closed else {})})
    return entry_view(conn, entry.id)
