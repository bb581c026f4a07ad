"""Service designations (지정): a district officer or the city designates a centre for a service (24시간, 휴일,
장애아통합, 다문화, 시간제, ...) from a date, until a date or open-ended. The register keeps every designation with
who made and who ended it (and ``audit_log`` every change); nothing is deleted.

``facilities.services`` is the effective set that search, the layers and the tiles read: the services of the
official data (``services_imported``, written by imports) and the designations valid on the day (Seoul time). It
is recomputed when a designation is made or ended, after every import, and by the daily job
(``dolbom designations refresh``) for designations that start or end on a date. An import never removes a
designation: when the official data does not list a designated service, ``conflicts`` lists it.

Languages: a centre declares the languages its staff speak (ISO 639-1 codes, e.g. ``zh``, ``vi``, ``en``), so a
family can search for a centre where someone speaks theirs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.domain import SEOUL_TZ, Service
from geo.errors import Conflict, InvalidQuery, NotFound

#: Services an authority designates (general daytime care and after-school classes are not designations).
DESIGNABLE: tuple[str, ...] = tuple(s.value for s in Service if s not in (Service.general,))
LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
MAX_LANGUAGES = 12

_REFRESH = """
    WITH effective AS (
        SELECT f.id, ARRAY(SELECT DISTINCT s FROM unnest(coalesce(f.services_imported, '{}'::text[]) || ARRAY(
                   SELECT d.service FROM designations d
                   WHERE d.facility_id = f.id AND d.valid_from <= :day AND (d.valid_to IS NULL OR d.valid_to >= :day)
               )) AS s ORDER BY s) AS services
        FROM facilities f WHERE (CAST(:ids AS integer[]) IS NULL OR f.id = ANY(:ids))
    )
    UPDATE facilities f SET services = e.services, updated_at = now()
    FROM effective e WHERE e.id = f.id AND f.services IS DISTINCT FROM e.services
"""


def today_in_seoul(now: datetime | None = None) -> date:
    """The day in Seoul (designations are dated in Korean time)."""
    return (now or datetime.now(SEOUL_TZ)).astimezone(SEOUL_TZ).date()


def refresh_services(conn: Connection, *, facility_ids: Sequence[int] | None = None, day: date | None = None) -> int:
    """Recompute ``facilities.services`` (imported ∪ designations valid on ``day``) of ``facility_ids`` (every
    centre when None); the number of centres whose services changed."""
    return int(conn.execute(text(_REFRESH), {"ids": None if facility_ids is None else list(facility_ids),
                                             "day": day or today_in_seoul()}).rowcount)


def _facility(conn: Connection, code: str) -> Any:
    row = conn.execute(text("SELECT id, code, name, district_code FROM facilities WHERE code = :c"),
                       {"c": code}).first()
    if row is None:
        raise NotFound(f"no centre {code}", param="code", value=code)
    return row


def facility_district(conn: Connection, code: str) -> tuple[int, str | None]:
    """A centre's id and 구 (for the permission check before a write)."""
    row = _facility(conn, code)
    return int(row.id), row.district_code


def _view(row: Any, today: date) -> dict[str, Any]:
    d = dict(row._mapping)
    d["active"] = d["valid_from"] <= today and (d["valid_to"] is None or d["valid_to"] >= today)
    return d


_SELECT = """SELECT d.id, f.code AS centre, f.name AS centre_name, f.district_code, d.service, d.authority,
                    d.valid_from, d.valid_to, d.note, d.created_at, d.ended_at,
                    (d.service = ANY(coalesce(f.services_imported, '{}'::text[]))) AS in_official_data
             FROM designations d JOIN facilities f ON f.id = d.facility_id"""


def designate(conn: Connection, *, facility_code: str, service: str, authority: str, valid_from: date,
              valid_to: date | None = None, note: str | None = None, actor_user_id: int | None,
              today: date | None = None) -> dict[str, Any]:
    """Designate ``service`` to the centre from ``valid_from`` (until ``valid_to``, inclusive, or open-ended).

    InvalidQuery for a service that is not designable, an empty authority or a period ending before it starts;
    Conflict when the centre already holds a designation of that service overlapping the period."""
    if service not in DESIGNABLE:
        raise InvalidQuery(f"service must be one of {', '.join(DESIGNABLE)}", param="service", value=service)
    if not authority.strip():
        raise InvalidQuery("authority must name who designates (e.g. 마포구청)", param="authority")
    if valid_to is not None and valid_to < valid_from:
        raise InvalidQuery("valid_to is before valid_from", param="valid_to", value=valid_to.isoformat())
    facility = _facility(conn, facility_code)
    conn.execute(text("SELECT id FROM facilities WHERE id = :f FOR UPDATE"), {"f": facility.id})
    overlapping = conn.execute(text("""
        SELECT id FROM designations WHERE facility_id = :f AND service = :s
          AND daterange(valid_from, valid_to, '[]') && daterange(:a, :b, '[]') LIMIT 1
    """), {"f": facility.id, "s": service, "a": valid_from, "b": valid_to}).scalar_one_or_none()
    if overlapping is not None:
        raise Conflict(f"centre {facility_code} already holds a {service} designation in that period "
                       f"(designation {overlapping})", param="service", designation=overlapping)
    new_id = conn.execute(text("""
        INSERT INTO designations (facility_id, service, authority, valid_from, valid_to, note, created_by)
        VALUES (:f, :s, :a, :vf, :vt, :n, :u) RETURNING id
    """), {"f": facility.id, "s": service, "a": authority.strip(), "vf": valid_from, "vt": valid_to,
           "n": note, "u": actor_user_id}).scalar_one()
    after = {"centre": facility_code, "service": service, "authority": authority.strip(),
             "valid_from": valid_from.isoformat(), "valid_to": valid_to and valid_to.isoformat(), "note": note}
    audit(conn, actor_user_id=actor_user_id, action="designation.create", entity="designations", entity_id=new_id,
          before=None, after=after)
    refresh_services(conn, facility_ids=[facility.id], day=today)
    return get(conn, int(new_id), today=today)


def end(conn: Connection, designation_id: int, *, valid_to: date, actor_user_id: int | None,
        today: date | None = None) -> dict[str, Any]:
    """End a designation on ``valid_to`` (its last valid day; before its start it never held)."""
    row = conn.execute(text("SELECT id, facility_id, valid_from, valid_to FROM designations WHERE id = :d FOR UPDATE"),
                       {"d": designation_id}).first()
    if row is None:
        raise NotFound(f"no designation {designation_id}", param="designation_id", value=designation_id)
    if valid_to < row.valid_from:
        raise InvalidQuery("valid_to is before the designation's valid_from", param="valid_to",
                           value=valid_to.isoformat())
    if row.valid_to is not None and row.valid_to <= valid_to:
        raise Conflict(f"designation {designation_id} already ends on {row.valid_to.isoformat()}",
                       param="valid_to")
    conn.execute(text("UPDATE designations SET valid_to = :vt, ended_by = :u, ended_at = now() WHERE id = :d"),
                 {"vt": valid_to, "u": actor_user_id, "d": designation_id})
    audit(conn, actor_user_id=actor_user_id, action="designation.end", entity="designations",
          entity_id=designation_id, before={"valid_to": row.valid_to and row.valid_to.isoformat()},
          after={"valid_to": valid_to.isoformat()})
    refresh_services(conn, facility_ids=[row.facility_id], day=today)
    return get(conn, designation_id, today=today)


def get(conn: Connection, designation_id: int, *, today: date | None = None) -> dict[str, Any]:
    """One designation with whether it holds today."""
    row = conn.execute(text(_SELECT + " WHERE d.id = :d"), {"d": designation_id}).first()
    if row is None:
        raise NotFound(f"no designation {designation_id}", param="designation_id", value=designation_id)
    return _view(row, today or today_in_seoul())


def register(conn: Connection, *, district_code: str | None = None, facility_code: str | None = None,
             service: str | None = None, active_only: bool = False, today: date | None = None) -> list[dict[str, Any]]:
    """The register (newest first), narrowed to a 구, a centre, a service and/or the designations valid today."""
    day = today or today_in_seoul()
    rows = conn.execute(text(_SELECT + """
        WHERE (CAST(:dc AS text) IS NULL OR f.district_code = :dc) AND (CAST(:fc AS text) IS NULL OR f.code = :fc)
          AND (CAST(:s AS text) IS NULL OR d.service = :s)
          AND (NOT :active OR (d.valid_from <= :day AND (d.valid_to IS NULL OR d.valid_to >= :day)))
        ORDER BY d.created_at DESC, d.id DESC"""),
                        {"dc": district_code, "fc": facility_code, "s": service, "active": active_only, "day": day})
    return [_view(r, day) for r in rows]


def conflicts(conn: Connection, *, district_code: str | None = None, today: date | None = None) -> list[dict[str, Any]]:
    """Designations valid today whose service the official data of the centre does not list (an import never
    removes them; an officer checks whether the data or the designation is behind)."""
    return [d for d in register(conn, district_code=district_code, active_only=True, today=today)
            if not d["in_official_data"]]


def set_languages(conn: Connection, *, facility_code: str, languages: Sequence[str],
                  actor_user_id: int | None) -> list[str]:
    """Declare the languages the centre's staff speak (ISO 639-1, lower case; replaces the earlier list)."""
    codes = sorted({code.strip().lower() for code in languages})
    bad = [c for c in codes if not LANGUAGE_CODE.match(c)]
    if bad:
        raise InvalidQuery(f"languages are two-letter ISO 639-1 codes (e.g. zh, vi, en); not {', '.join(bad)}",
                           param="languages", value=bad)
    if len(codes) > MAX_LANGUAGES:
        raise InvalidQuery(f"at most {MAX_LANGUAGES} languages", param="languages")
    facility = _facility(conn, facility_code)
    before = conn.execute(text("SELECT staff_languages FROM facilities WHERE id = :f FOR UPDATE"),
                          {"f": facility.id}).scalar_one()
    conn.execute(text("UPDATE facilities SET staff_languages = :l, updated_at = now() WHERE id = :f"),
                 {"l": codes, "f": facility.id})
    audit(conn, actor_user_id=actor_user_id, action="facility.languages", entity="facilities", entity_id=facility.id,
          before={"staff_languages": list(before or [])}, after={"staff_languages": codes})
    return codes


def history(conn: Connection, designation_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The audit trail of each designation (made, ended), oldest first, with the actor's e-mail."""
    rows = conn.execute(text("""
        SELECT CAST(a.entity_id AS integer) AS designation_id, a.at, a.action, a.before, a.after,
               u.email AS actor_email
        FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id
        WHERE a.entity = 'designations' AND a.entity_id = ANY(:ids)
        ORDER BY a.at, a.id"""), {"ids": [str(i) for i in designation_ids]}).mappings().all()
    out: dict[int, list[dict[str, Any]]] = {int(i): [] for i in designation_ids}
    for r in rows:
        out.setdefault(int(r["designation_id"]), []).append(dict(r))
    return out


def declared_languages(conn: Connection, *, district_code: str | None = None) -> list[dict[str, Any]]:
    """Centres (of a 구) whose staff declared the languages they speak, by name."""
    rows = conn.execute(text("""
        SELECT code, name, district_code, staff_languages AS languages FROM facilities
        WHERE cardinality(staff_languages) > 0 AND (CAST(:dc AS text) IS NULL OR district_code = :dc)
        ORDER BY name, code"""), {"dc": district_code}).mappings().all()
    return [dict(r) for r in rows]


def exists(conn: Connection, code: str) -> bool:
    """Whether a centre of this 어린이집코드 exists."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM facilities WHERE code = :c)"), {"c": code}).scalar())
