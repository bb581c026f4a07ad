"""What every part of the admission waitlist shares: the time of a write, random public ids, the per-centre advisory
lock and centre look-up.

Concurrency: writes to one centre's queue, offers and chain are serialised by a transaction-level advisory lock on
the centre (``lock_centre``), so two staff cannot hand out the same free place twice.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery, NotFound

SEOUL = SEOUL_TZ
ACTIVE = ("waiting", "offered")
LOCK_NAMESPACE = 7010  # first key of the advisory lock of a centre's waitlist (second key: facility id)


def resolve_now(now: datetime | None) -> datetime:
    """``now`` (which must carry a time zone), or the current time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidQuery("times must carry a time zone", param="now")
    return now


def new_id() -> str:
    """A random public id (16 hex digits) for children, entries and the chain."""
    return secrets.token_hex(8)


def lock_centre(conn: Connection, facility_id: int) -> None:
    """Take the transaction-level advisory lock of a centre's waitlist."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": LOCK_NAMESPACE, "id": facility_id})


def to_json(value: Any) -> str:
    """JSON text with Korean kept as it is."""
    return json.dumps(value, ensure_ascii=False)


def facility_by_code(conn: Connection, code: str) -> Any:
    """``id, code, district_code, status`` of a centre; ``NotFound`` otherwise."""
    row = conn.execute(text("SELECT id, code, district_code, status FROM facilities WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise NotFound(f"no centre with code {code!r}", param="code", value=code)
    return row
