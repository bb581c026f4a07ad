"""The register of sanctions and disclosures: record a sanction, publish its disclosure, withdraw it, and what is
published at an instant. Every write is audited (``audit_log``); nothing is deleted.

Time is injected: every function that depends on the day takes ``now`` (an aware datetime; the day is Seoul's),
so a test, the CLI or a server started with ``DOLBOM_CLOCK_OFFSET_DAYS`` (test-only) can ask about another day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.disclosure.rules import RULE_ID, SanctionKind, parse_kind, publication_period, seoul_day
from geo.errors import Conflict, InvalidQuery, NotFound

MAX_TEXT = 2000


def _facility(conn: Connection, code: str) -> Any:
    row = conn.execute(text("SELECT id, code, name, address, district_code FROM facilities WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise NotFound(f"no centre {code}", param="code", value=code)
    return row


def facility_district(conn: Connection, code: str) -> tuple[int, str | None]:
    """A centre's id and 구 (for the permission check before a write)."""
    row = _facility(conn, code)
    return int(row.id), row.district_code


def _text(value: str | None, *, param: str, required: bool) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise InvalidQuery(f"{param} is required", param=param)
        return None
    if len(cleaned) > MAX_TEXT or any(ord(c) < 32 and c not in "\n\t" for c in cleaned):
        raise InvalidQuery(f"{param}: at most {MAX_TEXT} characters, no control characters", param=param)
    return cleaned


def record_sanction(conn: Connection, *, facility_code: str, kind: str | SanctionKind, legal_basis: str,
                    violation: str, disposition: str, decided_at: date, final_at: date | None = None,
                    authority: str, representative_name: str | None = None, director_name: str | None = None,
                    amount_won: int | None = None, finding_ref: str | None = None, source: str = "officer",
                    actor_user_id: int | None) -> dict[str, Any]:
    """Record a disposition against the centre (optionally the inspection finding it follows).

    Raises
    ------
    InvalidQuery
        An unknown kind, an empty legal basis / violation / disposition / authority, a final day before the
        decision, a negative amount.
    NotFound
        No centre has this code.
    """
    kind = parse_kind(kind) if isinstance(kind, str) else kind
    values = {
        "legal_basis": _text(legal_basis, param="legal_basis", required=True),
        "violation": _text(violation, param="violation", required=True),
        "disposition": _text(disposition, param="disposition", required=True),
        "authority": _text(authority, param="authority", required=True),
        "representative_name": _text(representative_name, param="representative_name", required=False),
        "director_name": _text(director_name, param="director_name", required=False),
        "finding_ref": _text(finding_ref, param="finding_ref", required=False),
    }
    if final_at is not None and final_at < decided_at:
        raise InvalidQuery("final_at is before decided_at", param="final_at", value=final_at.isoformat())
    if amount_won is not None and amount_won < 0:
        raise InvalidQuery("amount_won must be 0 or more", param="amount_won", value=amount_won)
    facility = _facility(conn, facility_code)
    new_id = conn.execute(text("""
        INSERT INTO sanctions (facility_id, kind, legal_basis, violation, disposition, representative_name,
                               director_name, amount_won, decided_at, final_at, finding_ref, authority, source,
                               created_by)
        VALUES (:f, :kind, :legal_basis, :violation, :disposition, :representative_name, :director_name, :amount,
                :decided, :final, :finding_ref, :authority, :source, :u) RETURNING id
    """), {"f": facility.id, "kind": kind.value, **values, "amount": amount_won, "decided": decided_at,
           "final": final_at, "source": source, "u": actor_user_id}).scalar_one()
    after = {"centre": facility_code, "kind": kind.value, **values, "amount_won": amount_won,
             "decided_at": decided_at.isoformat(), "final_at": final_at and final_at.isoformat(), "source": source}
    audit(conn, actor_user_id=actor_user_id, action="sanction.create", entity="sanctions", entity_id=new_id,
          before=None, after=after)
    return get_sanction(conn, int(new_id))


def set_final(conn: Connection, sanction_id: int, *, final_at: date, actor_user_id: int | None) -> dict[str, Any]:
    """Record the day the sanction became final (확정: no appeal, or the appeal decided)."""
    row = conn.execute(text("SELECT decided_at, final_at FROM sanctions WHERE id = :s FOR UPDATE"),
                       {"s": sanction_id}).first()
    if row is None:
        raise NotFound(f"no sanction {sanction_id}", param="sanction_id", value=sanction_id)
    if final_at < row.decided_at:
        raise InvalidQuery("final_at is before decided_at", param="final_at", value=final_at.isoformat())
    conn.execute(text("UPDATE sanctions SET final_at = :f WHERE id = :s"), {"f": final_at, "s": sanction_id})
    audit(conn, actor_user_id=actor_user_id, action="sanction.final", entity="sanctions", entity_id=sanction_id,
          before={"final_at": row.final_at and row.final_at.isoformat()}, after={"final_at": final_at.isoformat()})
    return get_sanction(conn, sanction_id)


def publish(conn: Connection, sanction_id: int, *, now: datetime, published_from: date | None = None,
            published_until: date | None = None, actor_user_id: int | None) -> dict[str, Any]:
    """Publish the disclosure of a final sanction: from ``published_from`` (default: today in Seoul, or the day
    it became final if later) for the rule's period (``geo.disclosure.rules.publication_period``).
    ``published_until`` is only taken from a published list (the importer), and never after the rule's end.

    Raises
    ------
    InvalidQuery
        The sanction is not final, or the start is before it became final.
    Conflict
        The sanction already has a disclosure (withdrawn ones included: a withdrawal is final).
    """
    row = conn.execute(text("SELECT s.id, s.final_at, s.facility_id FROM sanctions s WHERE s.id = :s FOR UPDATE"),
                       {"s": sanction_id}).first()
    if row is None:
        raise NotFound(f"no sanction {sanction_id}", param="sanction_id", value=sanction_id)
    today = seoul_day(now)
    start = published_from or (max(today, row.final_at) if row.final_at else today)
    period = publication_period(final_at=row.final_at, start=start)
    until = period.published_until
    if published_until is not None:
        if published_until < period.published_from or published_until > until:
            raise InvalidQuery(f"published_until must lie between {period.published_from.isoformat()} and "
                               f"{until.isoformat()}", param="published_until", value=published_until.isoformat())
        until = published_until
    existing = conn.execute(text("SELECT id FROM disclosures WHERE sanction_id = :s"), {"s": sanction_id}).first()
    if existing is not None:
        raise Conflict(f"sanction {sanction_id} already has disclosure {existing.id}", param="sanction_id",
                       disclosure=existing.id)
    new_id = conn.execute(text("""
        INSERT INTO disclosures (sanction_id, facility_id, published_from, published_until, rule, shown, created_by)
        VALUES (:s, :f, :a, :b, :rule, :shown, :u) RETURNING id
    """), {"s": sanction_id, "f": row.facility_id, "a": period.published_from, "b": until, "rule": RULE_ID,
           "shown": period.published_from <= today <= until, "u": actor_user_id}).scalar_one()
    audit(conn, actor_user_id=actor_user_id, action="disclosure.publish", entity="disclosures", entity_id=new_id,
          before=None, after={"sanction_id": sanction_id, "published_from": period.published_from.isoformat(),
                              "published_until": until.isoformat(), "rule": RULE_ID})
    return get_disclosure(conn, int(new_id), now=now)


def withdraw(conn: Connection, disclosure_id: int, *, reason: str, now: datetime,
             actor_user_id: int | None) -> dict[str, Any]:
    """Withdraw a disclosure (the disposition was annulled, or published in error); it disappears at once."""
    cleaned = _text(reason, param="reason", required=True)
    row = conn.execute(text("SELECT id, withdrawn_at FROM disclosures WHERE id = :d FOR UPDATE"),
                       {"d": disclosure_id}).first()
    if row is None:
        raise NotFound(f"no disclosure {disclosure_id}", param="disclosure_id", value=disclosure_id)
    if row.withdrawn_at is not None:
        raise Conflict(f"disclosure {disclosure_id} is already withdrawn", param="disclosure_id")
    conn.execute(text("UPDATE disclosures SET withdrawn_at = :t, withdrawn_by = :u, withdrawal_reason = :r, "
                      "shown = false WHERE id = :d"),
                 {"t": now, "u": actor_user_id, "r": cleaned, "d": disclosure_id})
    audit(conn, actor_user_id=actor_user_id, action="disclosure.withdraw", entity="disclosures",
          entity_id=disclosure_id, before={"withdrawn_at": None}, after={"withdrawn_at": now.isoformat(),
                                                                          "reason": cleaned})
    return get_disclosure(conn, disclosure_id, now=now)


def refresh_shown(conn: Connection, *, now: datetime) -> int:
    """Set ``disclosures.shown`` to whether each is published on ``now``'s day (Seoul); the number changed.

    The ``disclosures`` layer reads ``shown``, so a disclosure that starts or ends on a date appears on or leaves
    the map (and its tiles' versions change) when this runs: at each write here and by the daily job
    ``dolbom disclosures refresh``."""
    return int(conn.execute(text("""
        UPDATE disclosures SET shown = NOT shown
        WHERE shown IS DISTINCT FROM (withdrawn_at IS NULL AND published_from <= :day AND published_until >= :day)
    """), {"day": seoul_day(now)}).rowcount)


_SANCTION_SELECT = """
    SELECT s.id, f.code AS centre, f.name AS centre_name, f.address AS centre_address, f.district_code, s.kind,
           s.legal_basis, s.violation, s.disposition, s.representative_name, s.director_name, s.amount_won,
           s.decided_at, s.final_at, s.finding_ref, s.authority, s.source, s.created_at
    FROM sanctions s JOIN facilities f ON f.id = s.facility_id"""

_DISCLOSURE_SELECT = """
    SELECT d.id, d.sanction_id, d.published_from, d.published_until, d.rule, d.shown, d.withdrawn_at,
           d.withdrawal_reason, d.created_at, f.code AS centre, f.name AS centre_name, f.address AS centre_address,
           f.district_code, s.kind, s.legal_basis, s.violation, s.disposition, s.representative_name,
           s.director_name, s.amount_won, s.decided_at, s.final_at, s.authority, s.finding_ref
    FROM disclosures d JOIN sanctions s ON s.id = d.sanction_id JOIN facilities f ON f.id = d.facility_id"""


def _disclosure_view(row: Any, day: date) -> dict[str, Any]:
    d = dict(row._mapping)
    d["active"] = d["withdrawn_at"] is None and d["published_from"] <= day <= d["published_until"]
    return d


def get_sanction(conn: Connection, sanction_id: int) -> dict[str, Any]:
    """One sanction."""
    row = conn.execute(text(_SANCTION_SELECT + " WHERE s.id = :s"), {"s": sanction_id}).first()
    if row is None:
        raise NotFound(f"no sanction {sanction_id}", param="sanction_id", value=sanction_id)
    return dict(row._mapping)


def disclosure_of(conn: Connection, sanction_id: int) -> int | None:
    """The id of the sanction's disclosure (None: never published)."""
    found = conn.execute(text("SELECT id FROM disclosures WHERE sanction_id = :s"), {"s": sanction_id}).scalar()
    return None if found is None else int(found)


def get_disclosure(conn: Connection, disclosure_id: int, *, now: datetime) -> dict[str, Any]:
    """One disclosure with its sanction and whether it is published at ``now``."""
    row = conn.execute(text(_DISCLOSURE_SELECT + " WHERE d.id = :d"), {"d": disclosure_id}).first()
    if row is None:
        raise NotFound(f"no disclosure {disclosure_id}", param="disclosure_id", value=disclosure_id)
    return _disclosure_view(row, seoul_day(now))


def active_disclosures(conn: Connection, *, now: datetime, facility_code: str | None = None,
                       facility_id: int | None = None, district_code: str | None = None) -> list[dict[str, Any]]:
    """The disclosures published at instant ``now`` (not withdrawn, ``now``'s Seoul day inside the period),
    newest first, narrowed to a centre (by code or id) or a 구."""
    day = seoul_day(now)
    rows = conn.execute(text(_DISCLOSURE_SELECT + """
        WHERE d.withdrawn_at IS NULL AND d.published_from <= :day AND d.published_until >= :day
          AND (CAST(:fc AS text) IS NULL OR f.code = :fc) AND (CAST(:fid AS integer) IS NULL OR f.id = :fid)
          AND (CAST(:dc AS text) IS NULL OR f.district_code = :dc)
        ORDER BY d.published_from DESC, d.id DESC"""),
                        {"day": day, "fc": facility_code, "fid": facility_id, "dc": district_code})
    return [_disclosure_view(r, day) for r in rows]


def register(conn: Connection, *, now: datetime, district_code: str | None = None,
             facility_code: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Sanctions (newest first) with their disclosure, if any, narrowed to a 구 or a centre: the officer's list."""
    day = seoul_day(now)
    rows = conn.execute(text(_SANCTION_SELECT.replace("SELECT s.id,", "SELECT s.id, d.id AS disclosure_id, "
                                                      "d.published_from, d.published_until, d.withdrawn_at,")
                             + """ LEFT JOIN disclosures d ON d.sanction_id = s.id
        WHERE (CAST(:dc AS text) IS NULL OR f.district_code = :dc) AND (CAST(:fc AS text) IS NULL OR f.code = :fc)
        ORDER BY s.created_at DESC, s.id DESC LIMIT :lim"""),
                        {"dc": district_code, "fc": facility_code, "lim": limit})
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["disclosure_active"] = (d["disclosure_id"] is not None and d["withdrawn_at"] is None
                                  and d["published_from"] <= day <= d["published_until"])
        out.append(d)
    return out


def history(conn: Connection, *, sanction_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The audit trail of sanctions and of their disclosures, oldest first."""
    ids = [str(i) for i in sanction_ids]
    rows = conn.execute(text("""
        SELECT a.id, a.action, a.entity, a.entity_id, a.actor_user_id, a.after, a.at
        FROM audit_log a
        WHERE (a.entity = 'sanctions' AND a.entity_id = ANY(:ids))
           OR (a.entity = 'disclosures' AND a.entity_id IN (
                SELECT CAST(d.id AS text) FROM disclosures d WHERE CAST(d.sanction_id AS text) = ANY(:ids)))
        ORDER BY a.id"""), {"ids": ids})
    return [dict(r._mapping) for r in rows]


PUBLIC_FIELDS = ("kind", "violation", "disposition", "legal_basis", "authority", "decided_at", "final_at",
                 "published_from", "published_until", "representative_name", "director_name", "centre_name",
                 "centre_address")


def public_disclosure(d: dict[str, Any]) -> dict[str, Any]:
    """What the public sees of a published disclosure (JSON-ready: dates as ISO text): the published facts only."""
    return {k: (d[k].isoformat() if isinstance(d[k], date) else d[k]) for k in PUBLIC_FIELDS}
