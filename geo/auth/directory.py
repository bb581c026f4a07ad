"""The city admin's views of accounts and of the audit trail: users found by e-mail, name, role, 구 or centre,
and audit rows filtered by actor, action and date, a page at a time (newest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.policy import Role
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery

MAX_PAGE = 200


def _like(value: str) -> str:
    """``value`` as a LIKE pattern matching it anywhere (its wildcards taken literally)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_users(conn: Connection, *, query: str | None = None, role: Role | str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Accounts whose e-mail, display name, 구 code or centre code contains ``query`` (any case), of ``role``;
    newest first. Returns (a page of rows, the number of all matches)."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidQuery(f"limit is 1..{MAX_PAGE}, offset >= 0", param="limit")
    role_value = None if role in (None, "") else Role(role).value
    params = {"q": _like(query.strip()) if query and query.strip() else None, "role": role_value,
              "limit": limit, "offset": offset}
    rows = conn.execute(text("""
        SELECT u.id, u.email, u.role, u.display_name, u.district_code, u.disabled, u.verified_at, u.created_at,
               coalesce(array_agg(f.code ORDER BY f.code) FILTER (WHERE f.code IS NOT NULL), '{}') AS facility_codes,
               count(*) OVER () AS total
        FROM users u LEFT JOIN user_centres uc ON uc.user_id = u.id LEFT JOIN facilities f ON f.id = uc.facility_id
        WHERE (CAST(:role AS text) IS NULL OR u.role = :role)
          AND (CAST(:q AS text) IS NULL OR u.email ILIKE :q OR coalesce(u.display_name, '') ILIKE :q
               OR coalesce(u.district_code, '') ILIKE :q
               OR EXISTS (SELECT 1 FROM user_centres c JOIN facilities cf ON cf.id = c.facility_id
                          WHERE c.user_id = u.id AND cf.code ILIKE :q))
        GROUP BY u.id ORDER BY u.id DESC LIMIT :limit OFFSET :offset"""), params).mappings().all()
    return _paged(rows)


def _paged(rows: Any) -> tuple[list[dict[str, Any]], int]:
    """Rows without their ``total`` column (``count(*) OVER ()``), and that total (0 for an empty page)."""
    out = [dict(r) for r in rows]
    total = int(out[0]["total"]) if out else 0
    for row in out:
        del row["total"]
    return out, total


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows: the actor (e-mail contains, or the user id), the action (prefix: ``user.`` or
    ``designation.create``), days from/to (inclusive, Seoul time)."""

    actor: str | None = None
    action: str | None = None
    day_from: date | None = None
    day_to: date | None = None


def _seoul_midnight(day: date | None) -> datetime | None:
    """The start of ``day`` in Seoul (an aware datetime: days of the audit trail are Korean days)."""
    return None if day is None else datetime.combine(day, time(), SEOUL_TZ)


def audit_entries(conn: Connection, flt: AuditFilter, *, limit: int = 50,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Audit rows matching ``flt``, newest first, with the actor's e-mail. Returns (a page, all matches)."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidQuery(f"limit is 1..{MAX_PAGE}, offset >= 0", param="limit")
    if flt.day_from and flt.day_to and flt.day_to < flt.day_from:
        raise InvalidQuery("the end day is before the start day", param="to")
    actor = (flt.actor or "").strip()
    params = {
        "actor_id": int(actor) if actor.isdigit() else None,
        "actor": _like(actor) if actor and not actor.isdigit() else None,
        "action": None if not flt.action else flt.action.replace("\\", "\\\\").replace("%", "\\%")
        .replace("_", "\\_") + "%",
        "from": _seoul_midnight(flt.day_from),
        "to": _seoul_midnight(flt.day_to and flt.day_to + timedelta(days=1)),
        "limit": limit, "offset": offset,
    }
    rows = conn.execute(text("""
        SELECT a.id, a.at, a.actor_user_id, u.email AS actor_email, a.action, a.entity, a.entity_id, a.before,
               a.after, count(*) OVER () AS total
        FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
        WHERE (CAST(:actor_id AS integer) IS NULL OR a.actor_user_id = :actor_id)
          AND (CAST(:actor AS text) IS NULL OR u.email ILIKE :actor)
          AND (CAST(:action AS text) IS NULL OR a.action LIKE :action)
          AND (CAST(:from AS timestamptz) IS NULL OR a.at >= :from)
          AND (CAST(:to AS timestamptz) IS NULL OR a.at < :to)
        ORDER BY a.id DESC LIMIT :limit OFFSET :offset"""), params).mappings().all()
    return _paged(rows)


def actions(conn: Connection) -> list[str]:
    """The actions the audit trail holds (for the filter's choices)."""
    return [str(a) for a in conn.execute(text("SELECT DISTINCT action FROM audit_log ORDER BY action")).scalars()]
