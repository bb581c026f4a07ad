"""Inspections of a 구's centres and their findings: plan a visit, record it against the checklist (a violation
becomes an open finding), order corrections with a deadline, the centre's staff answer with evidence, the officer
closes (or reopens) the finding and then the inspection. Every change of state goes through
``geo.inspections.states`` (one transition table; stored with actor and time; audited).

Complaints (민원) about a centre are kept here too: the risk list counts them.

A finding's ``id`` is what other modules (sanctions, the public disclosure of violations) reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery, NotFound
from geo.inspections.checklist import RESULTS, checklist
from geo.inspections.states import NEW, Ref, check, record, resolve_now

MAX_TEXT = 4000
COMPLAINT_SOURCES = ("phone", "online", "visit", "referral", "other")


def _text(value: str | None, param: str, *, required: bool = True) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise InvalidQuery(f"{param} must not be empty", param=param)
        return None
    if len(cleaned) > MAX_TEXT:
        raise InvalidQuery(f"{param} is longer than {MAX_TEXT} characters", param=param)
    if "\x00" in cleaned:
        raise InvalidQuery(f"{param} must not contain NUL characters", param=param)
    return cleaned


def facility(conn: Connection, code: str) -> Any:
    """A centre's id, code, name and 구 by 어린이집코드; ``NotFound`` otherwise."""
    row = conn.execute(text("SELECT id, code, name, district_code FROM facilities WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise NotFound(f"no centre {code}", param="code", value=code)
    return row


def add_complaint(conn: Connection, *, facility_code: str, received_at: datetime, summary: str, source: str,
                  actor_user_id: int | None) -> dict[str, Any]:
    """Record a complaint (민원) about a centre."""
    if source not in COMPLAINT_SOURCES:
        raise InvalidQuery(f"source must be one of {', '.join(COMPLAINT_SOURCES)}", param="source", value=source)
    if received_at.tzinfo is None:
        raise InvalidQuery("received_at must carry a time zone", param="received_at")
    f = facility(conn, facility_code)
    row = conn.execute(text("""
        INSERT INTO complaints (facility_id, received_at, summary, source, created_by)
        VALUES (:f, :r, :s, :src, :u) RETURNING id, received_at
    """), {"f": f.id, "r": received_at, "s": _text(summary, "summary"), "src": source, "u": actor_user_id}).one()
    view = {"id": int(row.id), "centre": f.code, "received_at": row.received_at, "summary": summary.strip(),
            "source": source}
    audit(conn, actor_user_id=actor_user_id, action="complaint.create", entity="complaints", entity_id=row.id,
          before=None, after={"centre": f.code, "source": source, "received_at": received_at.isoformat()})
    return view


# --- inspections -------------------------------------------------------------------------------------------------

def plan(conn: Connection, *, facility_code: str, planned_for: date, reason: str | None = None,
         actor_user_id: int | None, now: datetime | None = None) -> dict[str, Any]:
    """Plan a visit to a centre on ``planned_for`` (not in the past, Seoul days), against the latest checklist."""
    at = resolve_now(now)
    if planned_for < at.astimezone(SEOUL_TZ).date():
        raise InvalidQuery("planned_for is in the past", param="planned_for", value=planned_for.isoformat())
    f = facility(conn, facility_code)
    ref = Ref("inspection", 0, NEW)
    to = check(conn, ref, "plan", at=at)
    items = checklist()
    new_id = int(conn.execute(text("""
        INSERT INTO inspections (facility_id, status, planned_for, reason, checklist_version, checklist_sha256,
                                 created_by, created_at)
        VALUES (:f, :s, :p, :r, :v, :h, :u, :at) RETURNING id
    """), {"f": f.id, "s": to, "p": planned_for, "r": _text(reason, "reason", required=False), "v": items.version,
           "h": items.sha256, "u": actor_user_id, "at": at}).scalar_one())
    record(conn, ref, "plan", to, entity_id=new_id, at=at, actor_user_id=actor_user_id,
           details={"centre": f.code, "planned_for": planned_for.isoformat()})
    return get_inspection(conn, new_id)


def _lock_inspection(conn: Connection, inspection_id: int) -> Ref:
    row = conn.execute(text("SELECT id, status FROM inspections WHERE id = :i FOR UPDATE"),
                       {"i": inspection_id}).first()
    if row is None:
        raise NotFound(f"no inspection {inspection_id}", param="inspection_id", value=inspection_id)
    return Ref("inspection", int(row.id), row.status, inspection_id=int(row.id))


def record_visit(conn: Connection, inspection_id: int, *, results: Mapping[str, tuple[str, str | None]],
                 actor_user_id: int | None, now: datetime | None = None) -> dict[str, Any]:
    """Record the visit: a result (``compliant``, ``violation`` or ``not_checked``) and a note per checklist item
    (items left out are ``not_checked``); each violation opens a finding with the note as its description (a
    violation needs a note)."""
    at = resolve_now(now)
    ref = _lock_inspection(conn, inspection_id)
    to = check(conn, ref, "visit", at=at)
    version = conn.execute(text("SELECT checklist_version FROM inspections WHERE id = :i"),
                           {"i": inspection_id}).scalar_one()
    items = checklist(int(version))
    unknown = sorted(set(results) - set(items.codes))
    if unknown:
        raise InvalidQuery(f"unknown checklist items: {', '.join(unknown)}", param=f"results.{unknown[0]}")
    cleaned: dict[str, tuple[str, str | None]] = {}
    for code in items.codes:
        result, note = results.get(code, ("not_checked", None))
        if result not in RESULTS:
            raise InvalidQuery(f"results.{code}: must be one of {', '.join(RESULTS)}", param=f"results.{code}")
        note_text = _text(note, f"results.{code}.note", required=result == "violation")
        cleaned[code] = (result, note_text)
    conn.execute(text("UPDATE inspections SET status = :s, visited_at = :at, visited_by = :u WHERE id = :i"),
                 {"s": to, "at": at, "u": actor_user_id, "i": inspection_id})
    for code, (result, note_text) in cleaned.items():
        conn.execute(text("INSERT INTO inspection_items (inspection_id, item_code, result, note) "
                          "VALUES (:i, :c, :r, :n)"), {"i": inspection_id, "c": code, "r": result, "n": note_text})
    record(conn, ref, "visit", to, entity_id=inspection_id, at=at, actor_user_id=actor_user_id,
           details={"violations": [c for c, (r, _n) in cleaned.items() if r == "violation"]})
    for code, (result, note_text) in cleaned.items():
        if result == "violation":
            add_finding(conn, inspection_id, item_code=code, description=note_text or "", actor_user_id=actor_user_id,
                        now=at)
    return get_inspection(conn, inspection_id)


def _end(conn: Connection, inspection_id: int, event: str, *, actor_user_id: int | None,
         now: datetime | None) -> dict[str, Any]:
    """An inspection's last transition (``cancel`` or ``close``, as the table allows): status and end time."""
    at = resolve_now(now)
    ref = _lock_inspection(conn, inspection_id)
    to = check(conn, ref, event, at=at)
    conn.execute(text("UPDATE inspections SET status = :s, closed_at = :at WHERE id = :i"),
                 {"s": to, "at": at, "i": inspection_id})
    record(conn, ref, event, to, entity_id=inspection_id, at=at, actor_user_id=actor_user_id)
    return get_inspection(conn, inspection_id)


def cancel(conn: Connection, inspection_id: int, *, actor_user_id: int | None,
           now: datetime | None = None) -> dict[str, Any]:
    """Cancel a planned visit."""
    return _end(conn, inspection_id, "cancel", actor_user_id=actor_user_id, now=now)


def close_inspection(conn: Connection, inspection_id: int, *, actor_user_id: int | None,
                     now: datetime | None = None) -> dict[str, Any]:
    """Close a visited inspection once every finding is closed."""
    return _end(conn, inspection_id, "close", actor_user_id=actor_user_id, now=now)


_INSPECTION = """
    SELECT i.id, f.code AS centre, f.name AS centre_name, f.district_code, i.status, i.planned_for, i.reason,
           i.checklist_version, i.checklist_sha256, i.visited_at, i.closed_at, i.created_at
    FROM inspections i JOIN facilities f ON f.id = i.facility_id
"""


def get_inspection(conn: Connection, inspection_id: int) -> dict[str, Any]:
    """An inspection with its checklist results and findings."""
    row = conn.execute(text(_INSPECTION + " WHERE i.id = :i"), {"i": inspection_id}).mappings().first()
    if row is None:
        raise NotFound(f"no inspection {inspection_id}", param="inspection_id", value=inspection_id)
    view = dict(row)
    items = checklist(int(view["checklist_version"]))
    stored = {r.item_code: r for r in conn.execute(text(
        "SELECT item_code, result, note FROM inspection_items WHERE inspection_id = :i"), {"i": inspection_id})}
    view["items"] = [{"code": it.code, "ko": it.ko, "en": it.en, "basis": it.basis, "confirmed": it.confirmed,
                      "result": stored[it.code].result if it.code in stored else None,
                      "note": stored[it.code].note if it.code in stored else None} for it in items.items]
    view["findings"] = findings(conn, inspection_id=inspection_id)
    return view


def district_inspections(conn: Connection, district_code: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """The inspections of a 구's centres, open ones first, newest first."""
    rows = conn.execute(text(_INSPECTION + """
        WHERE f.district_code = :d
        ORDER BY (i.status IN ('closed', 'cancelled')), i.planned_for DESC, i.id DESC LIMIT :n
    """), {"d": district_code, "n": limit}).mappings().all()
    return [dict(r) for r in rows]


# --- findings ----------------------------------------------------------------------------------------------------

def _lock_finding(conn: Connection, finding_id: int) -> Ref:
    row = conn.execute(text("SELECT id, status, inspection_id, deadline FROM findings WHERE id = :f FOR UPDATE"),
                       {"f": finding_id}).first()
    if row is None:
        raise NotFound(f"no finding {finding_id}", param="finding_id", value=finding_id)
    return Ref("finding", int(row.id), row.status, inspection_id=int(row.inspection_id), deadline=row.deadline)


def add_finding(conn: Connection, inspection_id: int, *, item_code: str, description: str,
                actor_user_id: int | None, now: datetime | None = None) -> dict[str, Any]:
    """Record a finding on a checklist item of a visited inspection."""
    at = resolve_now(now)
    row = conn.execute(text("SELECT facility_id, checklist_version FROM inspections WHERE id = :i"),
                       {"i": inspection_id}).first()
    if row is None:
        raise NotFound(f"no inspection {inspection_id}", param="inspection_id", value=inspection_id)
    checklist(int(row.checklist_version)).item(item_code)
    ref = Ref("finding", 0, NEW, inspection_id=inspection_id)
    to = check(conn, ref, "record", at=at)
    new_id = int(conn.execute(text("""
        INSERT INTO findings (inspection_id, facility_id, item_code, description, status, created_by, created_at)
        VALUES (:i, :f, :c, :d, :s, :u, :at) RETURNING id
    """), {"i": inspection_id, "f": row.facility_id, "c": item_code, "d": _text(description, "description"),
           "s": to, "u": actor_user_id, "at": at}).scalar_one())
    record(conn, ref, "record", to, entity_id=new_id, at=at, actor_user_id=actor_user_id,
           details={"inspection": inspection_id, "item": item_code})
    return get_finding(conn, new_id)


def order(conn: Connection, finding_id: int, *, order_text: str, deadline: date, actor_user_id: int | None,
          now: datetime | None = None) -> dict[str, Any]:
    """Order a correction (시정명령) of an open finding by ``deadline`` (a Seoul day, today or later)."""
    at = resolve_now(now)
    if deadline < at.astimezone(SEOUL_TZ).date():
        raise InvalidQuery("the deadline is in the past", param="deadline", value=deadline.isoformat())
    ref = _lock_finding(conn, finding_id)
    to = check(conn, ref, "order", at=at)
    cleaned = _text(order_text, "order_text")
    conn.execute(text("UPDATE findings SET status = :s, order_text = :o, deadline = :d, ordered_at = :at "
                      "WHERE id = :f"), {"s": to, "o": cleaned, "d": deadline, "at": at, "f": finding_id})
    record(conn, ref, "order", to, entity_id=finding_id, at=at, actor_user_id=actor_user_id,
           details={"deadline": deadline.isoformat()})
    return get_finding(conn, finding_id)


def answer(conn: Connection, finding_id: int, *, answer_text: str, actor_user_id: int | None,
           now: datetime | None = None) -> dict[str, Any]:
    """The centre's answer to an order (what was corrected, with evidence), also after the deadline."""
    at = resolve_now(now)
    ref = _lock_finding(conn, finding_id)
    to = check(conn, ref, "answer", at=at)
    conn.execute(text("UPDATE findings SET status = :s, answer_text = :a, answered_at = :at, answered_by = :u "
                      "WHERE id = :f"),
                 {"s": to, "a": _text(answer_text, "answer_text"), "at": at, "u": actor_user_id, "f": finding_id})
    record(conn, ref, "answer", to, entity_id=finding_id, at=at, actor_user_id=actor_user_id,
           details={"late": ref.status == "overdue"})
    return get_finding(conn, finding_id)


def close_finding(conn: Connection, finding_id: int, *, note: str | None = None, actor_user_id: int | None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Close a finding: after an accepted answer, or an open one corrected on the spot."""
    at = resolve_now(now)
    ref = _lock_finding(conn, finding_id)
    to = check(conn, ref, "close", at=at)
    conn.execute(text("UPDATE findings SET status = :s, closed_at = :at, close_note = :n WHERE id = :f"),
                 {"s": to, "at": at, "n": _text(note, "note", required=False), "f": finding_id})
    record(conn, ref, "close", to, entity_id=finding_id, at=at, actor_user_id=actor_user_id)
    return get_finding(conn, finding_id)


def reopen(conn: Connection, finding_id: int, *, reason: str, deadline: date, actor_user_id: int | None,
           now: datetime | None = None) -> dict[str, Any]:
    """Refuse an answer: the order stands again with a new ``deadline`` and the officer's ``reason``."""
    at = resolve_now(now)
    if deadline < at.astimezone(SEOUL_TZ).date():
        raise InvalidQuery("the deadline is in the past", param="deadline", value=deadline.isoformat())
    ref = _lock_finding(conn, finding_id)
    to = check(conn, ref, "reopen", at=at)
    conn.execute(text("UPDATE findings SET status = :s, deadline = :d, close_note = :n WHERE id = :f"),
                 {"s": to, "d": deadline, "n": _text(reason, "reason"), "f": finding_id})
    record(conn, ref, "reopen", to, entity_id=finding_id, at=at, actor_user_id=actor_user_id,
           details={"deadline": deadline.isoformat()})
    return get_finding(conn, finding_id)


def mark_overdue(conn: Connection, *, now: datetime | None = None, district_code: str | None = None,
                 actor_user_id: int | None = None) -> list[int]:
    """Move every ordered finding whose deadline's day is over (Seoul) to ``overdue`` (of one 구 when given);
    the ids moved. Run by ``POST /inspections/overdue`` and ``dolbom inspections overdue`` (the daily job; the
    clock is injected)."""
    at = resolve_now(now)
    today = at.astimezone(SEOUL_TZ).date()
    ids = conn.execute(text("""
        SELECT g.id FROM findings g JOIN facilities f ON f.id = g.facility_id
        WHERE g.status = 'ordered' AND g.deadline < :today
          AND (CAST(:d AS text) IS NULL OR f.district_code = :d)
        ORDER BY g.id
    """), {"today": today, "d": district_code}).scalars().all()
    moved: list[int] = []
    for finding_id in ids:
        ref = _lock_finding(conn, int(finding_id))
        to = check(conn, ref, "deadline_passed", at=at)
        conn.execute(text("UPDATE findings SET status = :s WHERE id = :f"), {"s": to, "f": ref.id})
        record(conn, ref, "deadline_passed", to, entity_id=ref.id, at=at, actor_user_id=actor_user_id,
               details={"deadline": ref.deadline.isoformat()})
        moved.append(ref.id)
    return moved


_FINDING = """
    SELECT g.id, g.inspection_id, f.code AS centre, f.name AS centre_name, f.district_code, g.item_code,
           g.description, g.status, g.order_text, g.deadline, g.ordered_at, g.answer_text, g.answered_at,
           g.close_note, g.closed_at, g.created_at
    FROM findings g JOIN facilities f ON f.id = g.facility_id
"""


def get_finding(conn: Connection, finding_id: int) -> dict[str, Any]:
    """One finding with its corrective order and answer."""
    row = conn.execute(text(_FINDING + " WHERE g.id = :g"), {"g": finding_id}).mappings().first()
    if row is None:
        raise NotFound(f"no finding {finding_id}", param="finding_id", value=finding_id)
    return dict(row)


def findings(conn: Connection, *, inspection_id: int | None = None, facility_code: str | None = None,
             limit: int = 500) -> list[dict[str, Any]]:
    """Findings of an inspection or of a centre (oldest first within an inspection, newest inspection first)."""
    rows = conn.execute(text(_FINDING + """
        WHERE (CAST(:i AS bigint) IS NULL OR g.inspection_id = :i)
          AND (CAST(:c AS text) IS NULL OR f.code = :c)
        ORDER BY g.inspection_id DESC, g.id LIMIT :n
    """), {"i": inspection_id, "c": facility_code, "n": limit}).mappings().all()
    return [dict(r) for r in rows]
