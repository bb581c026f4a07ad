"""One transition table for inspections and for their findings (with the corrective order and the centre's
answer), and the one function through which every change of state is made, checked, stored with its actor and
time (``inspection_transitions``) and audited (``audit_log``).

Inspections (``inspections.status``)::

    new --plan--> planned --visit--> visited --close--> closed       planned --cancel--> cancelled

Findings (``findings.status``; a finding is recorded during a visit)::

    new --record--> open --order--> ordered --answer--> answered --close--> closed
    open --close--> closed                  (corrected on the spot: no order needed)
    ordered --deadline_passed--> overdue    (the order's deadline is over: injected clock, Seoul days)
    overdue --answer--> answered            (a late answer is still an answer)
    answered --reopen--> ordered            (the officer refuses the answer and sets a new deadline)

Guards: a finding is recorded only on a visited inspection; ``deadline_passed`` only after the deadline's day
(Asia/Seoul); an inspection closes only when every finding is closed. Anything else is ``IllegalTransition``
(409 over HTTP).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.domain import SEOUL_TZ
from geo.errors import IllegalTransition, InvalidQuery

NEW = "new"
INSPECTION_STATES = (NEW, "planned", "visited", "closed", "cancelled")
FINDING_STATES = (NEW, "open", "ordered", "answered", "overdue", "closed")
KINDS = ("inspection", "finding")


@dataclass(frozen=True)
class Ref:
    """What a transition applies to: ``kind`` (inspection or finding), its id (0 when new), its status, and for a
    finding its inspection and order deadline."""

    kind: str
    id: int
    status: str
    inspection_id: int | None = None
    deadline: Any = None  # date of a finding's order


Guard = Callable[[Connection, Ref, datetime], str | None]  # the reason the transition is refused, or None


def _inspection_visited(conn: Connection, ref: Ref, at: datetime) -> str | None:
    status = conn.execute(text("SELECT status FROM inspections WHERE id = :i"),
                          {"i": ref.inspection_id}).scalar_one_or_none()
    return None if status == "visited" else f"the inspection is {status or 'missing'}, not visited"


def _deadline_over(conn: Connection, ref: Ref, at: datetime) -> str | None:
    if ref.deadline is None:
        return "the finding has no deadline"
    today = at.astimezone(SEOUL_TZ).date()
    return None if today > ref.deadline else f"the deadline {ref.deadline.isoformat()} has not passed"


def _findings_closed(conn: Connection, ref: Ref, at: datetime) -> str | None:
    left = conn.execute(text("SELECT count(*) FROM findings WHERE inspection_id = :i AND status <> 'closed'"),
                        {"i": ref.id}).scalar_one()
    return f"{left} finding(s) not closed yet" if left else None


#: (kind, from, event) -> (to, guard)
TABLE: Mapping[tuple[str, str, str], tuple[str, Guard | None]] = {
    ("inspection", NEW, "plan"): ("planned", None),
    ("inspection", "planned", "visit"): ("visited", None),
    ("inspection", "planned", "cancel"): ("cancelled", None),
    ("inspection", "visited", "close"): ("closed", _findings_closed),
    ("finding", NEW, "record"): ("open", _inspection_visited),
    ("finding", "open", "order"): ("ordered", None),
    ("finding", "open", "close"): ("closed", None),
    ("finding", "ordered", "answer"): ("answered", None),
    ("finding", "ordered", "deadline_passed"): ("overdue", _deadline_over),
    ("finding", "overdue", "answer"): ("answered", None),
    ("finding", "answered", "reopen"): ("ordered", None),
    ("finding", "answered", "close"): ("closed", None),
}
EVENTS: dict[str, tuple[str, ...]] = {
    kind: tuple(sorted({e for (k, _s, e) in TABLE if k == kind})) for kind in KINDS
}


def target(ref: Ref, event: str) -> str:
    """The state ``event`` leads ``ref`` to, without guards; ``IllegalTransition`` when the table has none."""
    found = TABLE.get((ref.kind, ref.status, event))
    if found is None:
        raise IllegalTransition(f"a {ref.kind} that is {ref.status} cannot {event.replace('_', ' ')}",
                                kind=ref.kind, state=ref.status, event=event)
    return found[0]


def resolve_now(now: datetime | None) -> datetime:
    """``now`` (with a time zone: the injected clock) or the current time."""
    if now is None:
        return datetime.now(SEOUL_TZ)
    if now.tzinfo is None:
        raise InvalidQuery("times must carry a time zone", param="now")
    return now


def check(conn: Connection, ref: Ref, event: str, *, at: datetime) -> str:
    """The target of ``event`` from ``ref`` after its guard; ``IllegalTransition`` naming the reason."""
    to = target(ref, event)
    guard = TABLE[(ref.kind, ref.status, event)][1]
    reason = guard(conn, ref, at) if guard else None
    if reason:
        raise IllegalTransition(f"a {ref.kind} that is {ref.status} cannot {event.replace('_', ' ')}: {reason}",
                                kind=ref.kind, state=ref.status, event=event, reason=reason)
    return to


def record(conn: Connection, ref: Ref, event: str, to: str, *, entity_id: int, at: datetime,
           actor_user_id: int | None, details: dict[str, Any] | None = None) -> None:
    """Store the transition (actor, time, details) and audit it; the caller has already written the row."""
    details = details or {}
    conn.execute(text("""
        INSERT INTO inspection_transitions (kind, entity_id, event, from_status, to_status, actor_user_id, at,
                                            details)
        VALUES (:k, :id, :e, :f, :t, :u, :at, :d)
    """), {"k": ref.kind, "id": entity_id, "e": event, "f": ref.status, "t": to, "u": actor_user_id, "at": at,
           "d": Jsonb(details)})
    table = "inspections" if ref.kind == "inspection" else "findings"
    audit(conn, actor_user_id=actor_user_id, action=f"{ref.kind}.{event}", entity=table, entity_id=entity_id,
          before=None if ref.status == NEW else {"status": ref.status}, after={"status": to, **details})


def history(conn: Connection, kind: str, entity_id: int) -> list[dict[str, Any]]:
    """The transitions of one inspection or finding, oldest first, with the actor's e-mail."""
    rows = conn.execute(text("""
        SELECT t.event, t.from_status, t.to_status, t.at, t.details, t.actor_user_id, u.email AS actor_email
        FROM inspection_transitions t LEFT JOIN users u ON u.id = t.actor_user_id
        WHERE t.kind = :k AND t.entity_id = :id ORDER BY t.at, t.id
    """), {"k": kind, "id": entity_id}).mappings().all()
    return [dict(r) for r in rows]
