"""The life of an entry outside offers: applications (limits from the year's rules), withdrawal, keeping an entry
after admission elsewhere, yearly renewal and dropping of entries not renewed, administrators' corrections, and
the parent's notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.children import child_of, verified_parent
from geo.admission.common import SEOUL, facility_by_code, lock_centre, new_id, resolve_now
from geo.admission.events import ensure_rules_event, entry_priority, register_pseudonym, secret
from geo.admission.queue import age_class_in
from geo.admission.rules import childcare_year, rules_for
from geo.admission.states import NEW, EntryRef, lock_entry, transition
from geo.domain import is_operating
from geo.errors import Conflict, IllegalTransition, InvalidQuery, NotFound


def apply(conn: Connection, *, parent_user_id: int, child_id: int, facility_code: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Apply for a child to a centre (the 반 of the current 보육연도); limits from the year's rules."""
    at = resolve_now(now)
    verified_parent(conn, parent_user_id)
    child = child_of(conn, child_id, parent_user_id, lock=True)  # serialises one child's applications
    facility = facility_by_code(conn, facility_code)
    if not is_operating(facility.status):
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
    draft = EntryRef(id=0, public_id=new_id(), child_id=child.id, facility_id=facility.id, year=year,
                     age_class=age_class, status=NEW, preference=len(active) + 1, applied_at=at)
    # The log first: the rule table in force, then the application with everything its rank follows from (the
    # child only by its pseudonym at this centre, the claims only as salted commitments).
    lock_centre(conn, facility.id)
    ensure_rules_event(conn, facility.id, year, at=at)
    key = secret(conn)
    pseudonym = register_pseudonym(conn, key, facility_id=facility.id, child_id=child.id,
                                   child_public_id=child.public_id)
    priority = entry_priority(conn, key, facility_id=facility.id, child_id=child.id, child_public_id=child.public_id,
                              year=year)
    applied = transition(conn, draft, "apply", at=at,
                         details={"child": pseudonym, "year": year, "age_class": age_class,
                                  "applied_at": at.isoformat(), "preference": draft.preference, **priority})
    return entry_view(conn, applied.entry_id)


def entry_view(conn: Connection, entry_id: int) -> dict[str, Any]:
    """An entry as its parent sees it."""
    row = conn.execute(text("""SELECT e.public_id AS entry, f.code AS centre, e.child_id, e.year, e.age_class,
                                      e.preference, e.applied_at, e.status, e.lapse_at
                               FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                               WHERE e.id = :e"""), {"e": entry_id}).mappings().one()
    return dict(row)


def own_entry(conn: Connection, entry_public_id: str, parent_user_id: int) -> EntryRef:
    """The parent's entry, locked (``NotFound`` for anyone else's)."""
    entry_id = conn.execute(text("""SELECT e.id FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                                    WHERE e.public_id = :pid AND ch.parent_user_id = :p"""),
                            {"pid": entry_public_id, "p": parent_user_id}).scalar_one_or_none()
    if entry_id is None:
        raise NotFound(f"no entry {entry_public_id} of yours", param="entry", value=entry_public_id)
    return lock_entry(conn, entry_id)


def withdraw(conn: Connection, *, parent_user_id: int, entry_public_id: str,
             now: datetime | None = None) -> dict[str, Any]:
    """The parent withdraws an active entry (an open offer on it is declined)."""
    at = resolve_now(now)
    entry = own_entry(conn, entry_public_id, parent_user_id)
    transition(conn, entry, "withdraw", at=at)
    return entry_view(conn, entry.id)


def keep_entries(conn: Connection, *, parent_user_id: int, entry_public_id: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """Keep an active entry that would lapse after the child's admission elsewhere."""
    entry = own_entry(conn, entry_public_id, parent_user_id)
    transition(conn, entry, "keep", at=resolve_now(now))
    return entry_view(conn, entry.id)


def renew(conn: Connection, *, parent_user_id: int, entry_public_id: str,
          now: datetime | None = None) -> dict[str, Any]:
    """Renew a waiting entry for the next 보육연도 (its 반 age moves up by one); ranks keep the application time."""
    at = resolve_now(now)
    entry = own_entry(conn, entry_public_id, parent_user_id)
    target = childcare_year(at.astimezone(SEOUL).date()) + 1
    if entry.status != "waiting" or entry.year >= target:
        raise IllegalTransition(f"entry {entry_public_id} cannot be renewed for {target}", state=entry.status,
                                event="renew")
    if entry.age_class + (target - entry.year) > 5:
        raise Conflict("the child is past the 5세 class next year", param="entry")
    transition(conn, entry, "renew", at=at, year=target, details={"year": target})
    return entry_view(conn, entry.id)


def drop_unrenewed(conn: Connection, *, year: int, now: datetime | None = None) -> int:
    """At the start of 보육연도 ``year``: waiting entries of earlier years not renewed are dropped, with a notice
    to the parent. Returns how many."""
    at = resolve_now(now)
    rows = conn.execute(text("""SELECT e.id, ch.parent_user_id, f.code
                                FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                                JOIN facilities f ON f.id = e.facility_id
                                WHERE e.status = 'waiting' AND e.year < :y ORDER BY e.facility_id, e.id"""),
                        {"y": year}).all()
    dropped = 0
    for r in rows:
        entry = lock_entry(conn, r.id)
        if entry.status != "waiting":  # changed since the list was read
            continue
        transition(conn, entry, "drop_unrenewed", at=at, details={"year": year})
        notice(conn, r.parent_user_id, r.id, "dropped",
               f"your entry at {r.code} was not renewed for {year} and has been dropped")
        dropped += 1
    return dropped


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
    entry_id = conn.execute(text("SELECT id FROM waitlist_entries WHERE public_id = :pid"),
                            {"pid": entry_public_id}).scalar_one_or_none()
    if entry_id is None:
        raise NotFound(f"no entry {entry_public_id}", param="entry", value=entry_public_id)
    entry = lock_entry(conn, entry_id)
    if status == "waiting" and entry.lapse_at is not None and entry.lapse_at <= at:
        # Active again past its lapse date, it would hold a rank the expiry job takes away at its next run.
        raise Conflict(f"entry {entry_public_id} lapsed on {entry.lapse_at.isoformat()}: a correction cannot make "
                       "it waiting again past its lapse date", param="status", value=status)
    # The table says what goes with the change: an open offer closes, an admission frees its place.
    transition(conn, entry, "correction", target=status, at=at,
               details={"reason": reason.strip(), "by": actor_user_id})
    return entry_view(conn, entry.id)
