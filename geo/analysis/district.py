"""A 구 at a glance for its officer (``/portal/officer``): centres whose vacancy figures are stale or missing,
free places against the waitlist queue per 행정동 and class age, the planner's blind spots inside the 구 and the
planner's figures for the 구 (the latest saved run; nothing is recomputed here).

Every function takes the connection first and a 5-digit 구 code; none decides who may read it (the caller
authorises ``Action.read_district``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.rules import childcare_year
from geo.domain import OPERATING_STATUS_VALUES
from geo.vacancy.reports import AGES, district_status

#: Waitlist entries that still hold a place in the queue.
QUEUED_STATUSES = ("waiting", "offered")


def districts(conn: Connection, *, sido_code: str = "11") -> list[dict[str, Any]]:
    """The 구 of a 시도 (code, name), in code order (the city admin's choice of 구)."""
    rows = conn.execute(text("SELECT code, name FROM districts WHERE code LIKE :p ORDER BY code"),
                        {"p": f"{sido_code}%"}).mappings().all()
    return [dict(r) for r in rows]


def district_name(conn: Connection, district_code: str) -> str | None:
    """The 구's name, or None for an unknown code."""
    name = conn.execute(text("SELECT name FROM districts WHERE code = :d"), {"d": district_code}).scalar_one_or_none()
    return None if name is None else str(name)


def stale_centres(conn: Connection, district_code: str, *, stale_after_days: float,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """Operating centres of the 구 whose figures are older than ``stale_after_days`` or missing: the oldest report
    first, then the centres that never reported (by code); each with ``age_days`` (None when missing)."""
    at: datetime = now or conn.execute(text("SELECT now()")).scalar_one()
    out = []
    for row in district_status(conn, district_code, stale_after_days=stale_after_days):
        if not row["stale"]:
            continue
        last = row["last_reported_at"]
        row["age_days"] = None if last is None else max(0, (at - last) // timedelta(days=1))
        out.append(row)
    never = datetime.max.replace(tzinfo=at.tzinfo)
    out.sort(key=lambda r: (r["last_reported_at"] is None, r["last_reported_at"] or never, r["code"]))
    return out


_PRESSURE = """
    WITH c AS (
        SELECT id, admin_dong_id, free_by_age FROM facilities
        WHERE district_code = :d AND status = ANY(:statuses)
    ), free AS (
        SELECT c.admin_dong_id, a.age, count(*) AS centres,
               sum(CASE WHEN jsonb_typeof(c.free_by_age -> a.age) = 'number'
                        THEN greatest((c.free_by_age ->> a.age)::numeric, 0) ELSE 0 END)::int AS free_places
        FROM c CROSS JOIN unnest(CAST(:ages AS text[])) AS a(age)
        GROUP BY c.admin_dong_id, a.age
    ), queue AS (
        SELECT c.admin_dong_id, e.age_class::text AS age, count(*) AS queued
        FROM waitlist_entries e JOIN c ON c.id = e.facility_id
        WHERE e.status = ANY(:queued) AND e.year >= :year
        GROUP BY c.admin_dong_id, e.age_class
    )
    SELECT free.admin_dong_id AS dong_id, coalesce(a.name, '-') AS dong_name, free.age, free.centres,
           free.free_places, coalesce(queue.queued, 0)::int AS queued
    FROM free
    LEFT JOIN queue ON queue.admin_dong_id IS NOT DISTINCT FROM free.admin_dong_id AND queue.age = free.age
    LEFT JOIN admin_dongs a ON a.id = free.admin_dong_id
    ORDER BY a.name NULLS LAST, free.admin_dong_id, free.age
"""


def pressure_by_dong(conn: Connection, district_code: str, *, today: date | None = None) -> list[dict[str, Any]]:
    """Per 행정동 of the 구: operating centres, and for each class age 0-5 the free places (the centres' current
    ``free_by_age``) against the children queued (waiting or offered, this 보육연도 or later); rows by dong name,
    each ``{"dong_id", "dong_name", "centres", "ages": {age: {"free", "queued", "short"}}, "free", "queued"}``
    where ``short`` is the queue beyond the free places (0 when the places suffice)."""
    rows = conn.execute(text(_PRESSURE), {
        "d": district_code, "statuses": list(OPERATING_STATUS_VALUES), "ages": list(AGES),
        "queued": list(QUEUED_STATUSES), "year": childcare_year(today or date.today())}).mappings().all()
    dongs: dict[Any, dict[str, Any]] = {}
    for r in rows:
        dong = dongs.setdefault(r["dong_id"], {"dong_id": r["dong_id"], "dong_name": r["dong_name"],
                                               "centres": int(r["centres"]), "ages": {}, "free": 0, "queued": 0})
        free, queued = int(r["free_places"]), int(r["queued"])
        dong["ages"][r["age"]] = {"free": free, "queued": queued, "short": max(0, queued - free)}
        dong["free"] += free
        dong["queued"] += queued
    return list(dongs.values())


_BLIND_SPOTS = """
    WITH latest AS (
        SELECT DISTINCT ON (service) id, service FROM planner_runs ORDER BY service, created_at DESC, id DESC
    )
    SELECT concat(latest.service, '-', c.cell_i, '-', c.cell_j) AS id, latest.service, c.admin_dong_id,
           a.name AS dong_name, c.children, c.places_in_reach, c.e2sfca, c.nearest_m, c.gap_places, c.blind_rank,
           ST_X(ST_PointOnSurface(c.geom_4326)) AS lon, ST_Y(ST_PointOnSurface(c.geom_4326)) AS lat
    FROM planner_cells c JOIN latest ON latest.id = c.run_id
    LEFT JOIN admin_dongs a ON a.id = c.admin_dong_id
    WHERE c.blind_spot AND c.district_code = :d
    ORDER BY c.gap_places DESC, 1
    LIMIT :limit
"""


def blind_spots(conn: Connection, district_code: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The blind spots inside the 구 as the ``blind_spots`` layer serves them (``geo.layers.blind_spots``: the
    latest planner run per service type; the same feature ids), most places short first, with the 행정동's name
    and a point inside the cell (``lon``, ``lat``, EPSG:4326)."""
    rows = conn.execute(text(_BLIND_SPOTS), {"d": district_code, "limit": limit}).mappings().all()
    return [dict(r) for r in rows]


_PLANNER = """
    WITH run AS (
        SELECT id, service, area_code, cell_m, catchment_m, created_at FROM planner_runs
        WHERE service = 'all' AND (area_code = :d OR :d LIKE area_code || '%')
        ORDER BY created_at DESC, id DESC LIMIT 1
    )
    SELECT run.id AS run_id, run.area_code, run.cell_m, run.catchment_m, run.created_at,
           coalesce(sum(c.children), 0) AS children, coalesce(sum(c.centres), 0)::int AS centres,
           coalesce(sum(c.places), 0)::int AS places,
           sum(c.e2sfca * c.children) / nullif(sum(c.children), 0) AS e2sfca,
           count(*) FILTER (WHERE c.blind_spot)::int AS blind_spots,
           coalesce(sum(c.children) FILTER (WHERE c.blind_spot), 0) AS blind_children,
           coalesce(sum(c.gap_places) FILTER (WHERE c.blind_spot), 0) AS gap_places
    FROM run LEFT JOIN planner_cells c ON c.run_id = run.id AND c.district_code = :d
    GROUP BY run.id, run.area_code, run.cell_m, run.catchment_m, run.created_at
"""


def planner_figures(conn: Connection, district_code: str) -> dict[str, Any] | None:
    """The planner's figures for the 구 from the latest saved run over all centres that covers it
    (``geo.analysis.planner``): children 0-5, centres, places, child-weighted E2SFCA places per child, blind-spot
    cells, children in them and places short; None when no run covers the 구 (``dolbom planner`` saves one)."""
    row = conn.execute(text(_PLANNER), {"d": district_code}).mappings().first()
    return None if row is None else dict(row)


def operating_centres(conn: Connection, district_code: str) -> list[dict[str, Any]]:
    """The operating centres of the 구 (code, name, services), by name (a form's choice of centre)."""
    rows = conn.execute(text("""
        SELECT code, name, services FROM facilities WHERE district_code = :d AND status = ANY(:statuses)
        ORDER BY name, code"""), {"d": district_code, "statuses": list(OPERATING_STATUS_VALUES)}).mappings().all()
    return [dict(r) for r in rows]
