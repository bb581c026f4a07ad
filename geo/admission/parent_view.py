"""What a parent's pages show besides the ranks (``queue.my_ranks``): their open offers with deadlines, the lapse
dates of entries that may be kept, centre names for codes, and a centre's summary for its application page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import ACTIVE, facility_by_code
from geo.admission.queue import queues


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


def map_applications(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """The parent's active entries for the map: centre (id, code, name, point EPSG:4326), child, 반 age, year,
    status, rank and queue length. Read-only: unlike ``queue.my_ranks`` it does not remember the view, so looking at
    the map does not use up the explanations the applications page gives."""
    entries = conn.execute(text("""
        SELECT e.id, e.public_id, e.facility_id, f.code, f.name AS centre_name, e.year, e.age_class, e.status,
               ch.name AS child_name, ST_X(f.geom_4326) AS lon, ST_Y(f.geom_4326) AS lat
        FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id JOIN facilities f ON f.id = e.facility_id
        WHERE ch.parent_user_id = :p AND e.status IN ('waiting', 'offered') ORDER BY ch.id, e.preference, e.id
    """), {"p": parent_user_id}).all()
    if not entries:
        return []
    current_of = queues(conn, [(e.facility_id, e.year, e.age_class) for e in entries])
    out = []
    for e in entries:
        current = current_of[(e.facility_id, e.year, e.age_class)]
        rank = next((i for i, q in enumerate(current, start=1) if q.entry_id == e.id), None)
        out.append({"entry": e.public_id, "facility_id": e.facility_id, "centre": e.code,
                    "centre_name": e.centre_name, "child_name": e.child_name, "year": e.year,
                    "age_class": e.age_class, "status": e.status, "rank": rank, "of": len(current),
                    "lon": float(e.lon), "lat": float(e.lat)})
    return out


def queue_lengths(conn: Connection, code: str, *, year: int) -> dict[str, int]:
    """Public: how many entries wait (or hold an offer) at a centre in a 보육연도, by 반 age ("0".."5"). The same
    count as the length of the public queue of each age class (``queue.public_queue``)."""
    facility = facility_by_code(conn, code)
    rows = conn.execute(text("""SELECT age_class, count(*) AS n FROM waitlist_entries
                               WHERE facility_id = :f AND year = :y AND status = ANY(:st)
                               GROUP BY age_class ORDER BY age_class"""),
                        {"f": facility.id, "y": year, "st": list(ACTIVE)}).all()
    return {str(r.age_class): int(r.n) for r in rows}
