"""Children and their priority claims: registration by a verified parent, and the checked state of a claim (logged
on the chains of the child's centres, whose queues are re-ranked)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import SEOUL, lock_centre, new_id, resolve_now
from geo.admission.events import log_priority, secret
from geo.admission.queue import record_ranks
from geo.admission.rules import Evidence, childcare_year, rules_for
from geo.admission.states import check_claim
from geo.errors import Forbidden, InvalidQuery, NotFound
from geo.validation import personal_text


def verified_parent(conn: Connection, user_id: int) -> None:
    row = conn.execute(text("SELECT role, verified_at FROM users WHERE id = :u"), {"u": user_id}).first()
    if row is None or row.role != "parent":
        raise Forbidden("only a parent account registers children and applies", action="apply_waitlist")
    if row.verified_at is None:
        raise Forbidden("verify your identity (본인인증) before registering a child or applying",
                        action="apply_waitlist", reason="identity_not_verified")


def register_child(conn: Connection, *, parent_user_id: int, name: str, birth_date: date,
                   claims: Sequence[str] = (), claim_details: Mapping[str, str] | None = None,
                   enrolled: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Register a child of a verified parent with claimed priority categories (evidence ``claimed``).

    ``claim_details`` gives a claim its detail: a category that counts only at a named centre (형제자매 재원)
    needs the facility code of the centre where the sibling is enrolled, and counts only there.
    """
    at = resolve_now(now)
    verified_parent(conn, parent_user_id)
    name = personal_text(name, param="name") or ""
    if not name:
        raise InvalidQuery("the child's name is empty", param="name")
    if birth_date > at.astimezone(SEOUL).date():
        raise InvalidQuery("birth date in the future", param="birth_date", value=birth_date.isoformat())
    rules = rules_for(childcare_year(at.astimezone(SEOUL).date()))
    unknown = [c for c in claims if c not in rules.categories]
    if unknown:
        raise InvalidQuery(f"unknown priority categories {unknown}", param="claims", value=unknown)
    details = dict(claim_details or {})
    stray = sorted(set(details) - set(claims))
    if stray:
        raise InvalidQuery(f"details for categories not claimed: {stray}", param="claim_details", value=stray)
    for code in dict.fromkeys(claims):
        if rules.categories[code].scope.kind != "named_centre":
            continue
        if code not in details:
            raise InvalidQuery(f"claim {code!r} needs the facility code of the centre it names",
                               param="claim_details", value=code)
        if conn.execute(text("SELECT 1 FROM facilities WHERE code = :c"), {"c": details[code]}).first() is None:
            raise InvalidQuery(f"claim {code!r} names an unknown centre {details[code]!r}", param="claim_details",
                               value=details[code])
    child_id = conn.execute(text("""INSERT INTO children (public_id, parent_user_id, name, birth_date, enrolled)
                                    VALUES (:pid, :p, :n, :b, :e) RETURNING id"""),
                            {"pid": new_id(), "p": parent_user_id, "n": name.strip(), "b": birth_date,
                             "e": enrolled}).scalar_one()
    for code in dict.fromkeys(claims):
        conn.execute(text("INSERT INTO claims (child_id, category, detail) VALUES (:c, :cat, :d)"),
                     {"c": child_id, "cat": code, "d": details.get(code)})
    return child_view(conn, child_id)


def child_view(conn: Connection, child_id: int) -> dict[str, Any]:
    """A child with its claims (for its parent and its centres' staff)."""
    child = conn.execute(text("SELECT id, public_id, parent_user_id, name, birth_date, enrolled FROM children "
                              "WHERE id = :c"), {"c": child_id}).mappings().one()
    claims = conn.execute(text("SELECT category, detail, evidence, verified_at FROM claims WHERE child_id = :c "
                               "ORDER BY category"), {"c": child_id}).mappings().all()
    return {**dict(child), "claims": [dict(c) for c in claims]}


def child_of(conn: Connection, child_id: int, parent_user_id: int, *, lock: bool = False) -> Any:
    sql = "SELECT id, public_id, parent_user_id, birth_date, enrolled FROM children WHERE id = :c"
    row = conn.execute(text(sql + " FOR UPDATE" if lock else sql), {"c": child_id}).first()
    if row is None or row.parent_user_id != parent_user_id:
        raise NotFound(f"no child {child_id} of yours", param="child_id", value=child_id)
    return row


def set_evidence(conn: Connection, *, facility_id: int, child_public_id: str, category: str, evidence: Evidence | str,
                 actor_user_id: int | None, now: datetime | None = None) -> dict[str, Any]:
    """Record the checked state of a claim (staff of a centre the child applies to, or a linked record), log it on
    the chains of the child's centres and re-rank their queues."""
    at = resolve_now(now)
    state = Evidence(evidence)
    child = conn.execute(text("""SELECT ch.id FROM children ch WHERE ch.public_id = :pid AND EXISTS (
            SELECT 1 FROM waitlist_entries e WHERE e.child_id = ch.id AND e.facility_id = :f
            AND e.status IN ('waiting', 'offered'))"""), {"pid": child_public_id, "f": facility_id}).first()
    if child is None:
        raise NotFound(f"no child {child_public_id} on this centre's waitlist", param="child", value=child_public_id)
    claim = conn.execute(text("SELECT id, evidence FROM claims WHERE child_id = :c AND category = :cat FOR UPDATE"),
                         {"c": child.id, "cat": category}).first()
    if claim is None:
        raise NotFound(f"no claim {category!r} for child {child_public_id}", param="category", value=category)
    check_claim(claim.id, claim.evidence, state.value)
    conn.execute(text("UPDATE claims SET evidence = :ev, verified_by = :u, verified_at = :at WHERE id = :id"),
                 {"ev": state.value, "u": actor_user_id, "at": at, "id": claim.id})
    key = secret(conn)
    for q in _active_queues_of_child(conn, child.id):
        # The log says what changed without saying which category: the entry's new priority, its claims committed.
        lock_centre(conn, q.facility_id)
        log_priority(conn, key, facility_id=q.facility_id, entry_public_id=q.public_id, child_id=child.id,
                     child_public_id=child_public_id, year=q.year, at=at)
        record_ranks(conn, q.facility_id, q.year, q.age_class, now=at)
    return child_view(conn, child.id)


def _active_queues_of_child(conn: Connection, child_id: int) -> list[Any]:
    return list(conn.execute(text("""SELECT facility_id, year, age_class, public_id FROM waitlist_entries
                                     WHERE child_id = :c AND status IN ('waiting', 'offered')
                                     ORDER BY facility_id, id"""), {"c": child_id}).all())
