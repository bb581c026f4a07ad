"""Helpers for waitlist tests: verified parents, children, real centres with free places."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission import waitlist as wl

NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 보육연도 2026


def parent(conn: Connection, email: str, *, verified: bool = True) -> int:
    """A parent account, identity-verified unless told otherwise (inserted directly: no password hashing, which
    would dominate the concurrency tests; accounts are tested in tests/api/test_accounts_api.py)."""
    return int(conn.execute(text("""INSERT INTO users (email, password_hash, role, verified_at, verified_name)
                                    VALUES (:e, 'not-a-login', 'parent', CASE WHEN :v THEN now() END,
                                            CASE WHEN :v THEN '부모' END) RETURNING id"""),
                            {"e": email, "v": verified}).scalar_one())


def centres(conn: Connection, n: int) -> list[Any]:
    """``n`` operating real centres (lowest codes), ``id, code, district_code``."""
    rows = conn.execute(text("SELECT id, code, district_code FROM facilities WHERE status = 'active' "
                             "AND district_code IS NOT NULL ORDER BY code LIMIT :n"), {"n": n}).all()
    assert len(rows) == n
    return list(rows)


def set_free(conn: Connection, facility_id: int, free_by_age: dict[str, int]) -> None:
    """Declare free places by age on a centre."""
    import json

    conn.execute(text("UPDATE facilities SET free_by_age = CAST(:f AS jsonb) WHERE id = :id"),
                 {"f": json.dumps(free_by_age), "id": facility_id})


def child(conn: Connection, parent_id: int, *, claims: tuple[str, ...] = (), born: date = date(2025, 5, 1),
          name: str = "김아기") -> dict[str, Any]:
    """A registered child (claims in state ``claimed``)."""
    return wl.register_child(conn, parent_user_id=parent_id, name=name, birth_date=born, claims=claims, now=NOW)
