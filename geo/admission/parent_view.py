"""What a parent's pages show besides the ranks (``queue.my_ranks``): their open offers with deadlines, the lapse
dates of entries that may be kept, centre names for codes, and a centre's summary for its application page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import facility_by_code


def open_offers(conn: Connection, *, parent_user_id: int) -> dict[str, dict[str, Any]]:
    """The parent's open offers by their entry's public id: ``id``, ``deadline``, ``age_class``."""
    rows = conn.execute(text("""SELECT o.id, e.public_id AS entry, o.deadline, o.age_class
                               FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                               JOIN children ch ON ch.id = o.child_id
                               WHERE ch.parent_user_id = :p AND o.status = 'open' ORDER BY o.deadline"""),
                        {"p": parent_user_id}).mappings().all()
    return {r["entry"]: dict(r) for r in rows}


def lapse_dates(conn: Connection, *, parent_user_id: int) -> dict[str, datetime]:
    """Active entries that lapse unless kept (the child admitted elsewhere): public id -> lapse time."""
    rows = conn.execute(text("""SELECT e.public_id, e.lapse_at FROM waitlist_entries e
                               JOIN children ch ON ch.id = e.child_id
                               WHERE ch.parent_user_id = :p AND e.lapse_at IS NOT NULL
                                 AND e.status IN ('waiting', 'offered')"""), {"p": parent_user_id}).all()
    return {r.public_id: r.lapse_at for r in rows}


def admitted(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """The parent's children admitted at a centre: child name, centre code and name, 반 age, year."""
    rows = conn.execute(text("""SELECT ch.name AS child_name, f.code AS centre, f.name AS centre_name, e.age_class,
                                      e.year
                               FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id
                               JOIN facilities f ON f.id = e.facility_id
                               WHERE ch.parent_user_id = :p AND e.status = 'admitted' ORDER BY e.id"""),
                        {"p": parent_user_id}).mappings().all()
    return [dict(r) for r in rows]


def centre_names(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """Centre names by code."""
    rows = conn.execute(text("SELECT code, name FROM facilities WHERE code = ANY(:c)"), {"c": list(codes)}).all()
    return {r.code: r.name for r in rows}


def centre_summary(conn: Connection, code: str) -> dict[str, Any]:
    """A centre's name, address, 구, type, status and classes by age (``NotFound`` for an unknown code)."""
    facility = facility_by_code(conn, code)
    row = conn.execute(text("""SELECT code, name, address, sigungu_name, facility_type, status, capacity,
                                      classes_by_age, free_by_age
                               FROM facilities WHERE id = :f"""), {"f": facility.id}).mappings().one()
    return dict(row)
