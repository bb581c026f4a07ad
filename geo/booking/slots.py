"""Slots published by centres with 휴일보육, 24시간, 야간연장 or 시간제보육: one-off slots, recurring patterns
(every Sunday 08:00-20:00, every public holiday) with exceptions, and the public search of bookable slots.

Times are Korean local time (Asia/Seoul) on input and stored as ``timestamptz``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from psycopg import sql
from sqlalchemy import Connection, text

from geo.db import composed
from geo.domain import SEOUL_TZ, Service
from geo.errors import Conflict, InvalidQuery, NotFound
from geo.validation import validate_point

BOOKABLE_SERVICES: tuple[Service, ...] = (Service.holiday, Service.twenty_four_hour, Service.extended_hours,
                                          Service.hourly)
MAX_PATTERN_DAYS = 366
MAX_PLACES = 200


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays("KR", years=year).keys())


def is_calendar_holiday(day: date) -> bool:
    """A Korean public holiday of the calendar (설날, 추석, substitute holidays, ...); plain Sundays are not."""
    return day in _holidays(day.year)


def pattern_dates(*, valid_from: date, valid_until: date, weekday: int | None, on_holidays: bool,
                  skip_holidays: bool, exceptions: Iterable[date] = ()) -> list[date]:
    """The days a pattern publishes a slot on, in order.

    Parameters
    ----------
    weekday
        0 (Monday) .. 6 (Sunday), or None for a public-holiday pattern (``on_holidays``).
    skip_holidays
        Leave out the Korean public holidays (weekday patterns).
    exceptions
        Days on which nothing is published.
    """
    if (weekday is None) != on_holidays:
        raise InvalidQuery("a pattern is either on a weekday or on public holidays", param="weekday")
    if weekday is not None and not 0 <= weekday <= 6:
        raise InvalidQuery(f"weekday must be 0 (Monday) to 6 (Sunday) (got {weekday})", param="weekday")
    if valid_until < valid_from:
        raise InvalidQuery("valid_until is before valid_from", param="valid_until")
    if (valid_until - valid_from).days >= MAX_PATTERN_DAYS:
        raise InvalidQuery(f"a pattern spans at most {MAX_PATTERN_DAYS} days", param="valid_until")
    skip = set(exceptions)
    days: list[date] = []
    day = valid_from
    while day <= valid_until:
        holiday = is_calendar_holiday(day)
        if day not in skip and (
            (on_holidays and holiday) or (weekday is not None and day.weekday() == weekday
                                         and not (skip_holidays and holiday))):
            days.append(day)
        day += timedelta(days=1)
    return days


def slot_range(day: date, start: time, end: time) -> tuple[datetime, datetime]:
    """Start and end (aware, Seoul) of a slot on ``day``; an end at or before the start is on the next day."""
    starts = datetime.combine(day, start, SEOUL_TZ)
    ends = datetime.combine(day + timedelta(days=1) if end <= start else day, end, SEOUL_TZ)
    return starts, ends


def check_places(places_by_age: dict[str, int]) -> dict[str, int]:
    """Places by age (``{"0": 1, "2": 3}``): keys 0..5, values 0..200, at least one place."""
    cleaned: dict[str, int] = {}
    for age, places in places_by_age.items():
        if age not in {str(a) for a in range(6)}:
            raise InvalidQuery(f"places_by_age keys are ages 0 to 5 (got {age!r})", param="places_by_age")
        if not isinstance(places, int) or not 0 <= places <= MAX_PLACES:
            raise InvalidQuery(f"places for age {age} must be 0 to {MAX_PLACES}", param="places_by_age")
        cleaned[age] = places
    if sum(cleaned.values()) == 0:
        raise InvalidQuery("a slot needs at least one place", param="places_by_age")
    return cleaned


def facility_for_booking(conn: Connection, code: str, service: str | None = None) -> dict[str, Any]:
    """A centre by 어린이집코드 (id, name, phone, services); ``service`` must be one it offers and bookable."""
    row = conn.execute(text("SELECT id, code, name, phone, district_code, services FROM facilities WHERE code = :c"),
                       {"c": code}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no centre with code {code!r}", param="code")
    if service is not None:
        if service not in {s.value for s in BOOKABLE_SERVICES}:
            raise InvalidQuery(f"service must be one of {', '.join(s.value for s in BOOKABLE_SERVICES)}",
                               param="service")
        if service not in row["services"]:
            raise InvalidQuery(f"centre {code} does not offer {service}", param="service")
    return dict(row)


def _insert_slot(conn: Connection, *, facility_id: int, pattern_id: int | None, service: str, starts_at: datetime,
                 ends_at: datetime, places_by_age: dict[str, int]) -> int | None:
    return conn.execute(text(
        "INSERT INTO booking_slots (facility_id, pattern_id, service, starts_at, ends_at, places_by_age) "
        "VALUES (:f, :p, :s, :a, :b, CAST(:places AS jsonb)) "
        "ON CONFLICT ON CONSTRAINT uq_booking_slots_time DO NOTHING RETURNING id"),
        {"f": facility_id, "p": pattern_id, "s": service, "a": starts_at, "b": ends_at,
         "places": json.dumps(places_by_age)}).scalar()


def create_slot(conn: Connection, *, facility_code: str, service: str, day: date, start: time, end: time,
                places_by_age: dict[str, int]) -> int:
    """Publish one slot; ``Conflict`` when the centre already has the same service and time range."""
    centre = facility_for_booking(conn, facility_code, service)
    starts_at, ends_at = slot_range(day, start, end)
    slot_id = _insert_slot(conn, facility_id=centre["id"], pattern_id=None, service=service, starts_at=starts_at,
                           ends_at=ends_at, places_by_age=check_places(places_by_age))
    if slot_id is None:
        raise Conflict("this centre already publishes a slot for that service and time", param="start")
    return int(slot_id)


def create_pattern(conn: Connection, *, facility_code: str, service: str, weekday: int | None, on_holidays: bool,
                   skip_holidays: bool, start: time, end: time, places_by_age: dict[str, int], valid_from: date,
                   valid_until: date, exceptions: Iterable[date] = ()) -> dict[str, Any]:
    """Store a recurring pattern with its exceptions and publish its slots; returns ``{"id", "slot_ids"}``."""
    centre = facility_for_booking(conn, facility_code, service)
    places = check_places(places_by_age)
    skip = sorted(set(exceptions))
    days = pattern_dates(valid_from=valid_from, valid_until=valid_until, weekday=weekday, on_holidays=on_holidays,
                         skip_holidays=skip_holidays, exceptions=skip)
    pattern_id = int(conn.execute(text(
        "INSERT INTO booking_patterns (facility_id, service, weekday, on_holidays, skip_holidays, start_time, "
        "end_time, places_by_age, valid_from, valid_until) VALUES (:f, :s, :w, :h, :k, :a, :b, "
        "CAST(:places AS jsonb), :vf, :vu) RETURNING id"),
        {"f": centre["id"], "s": service, "w": weekday, "h": on_holidays, "k": skip_holidays, "a": start,
         "b": end, "places": json.dumps(places), "vf": valid_from, "vu": valid_until}).scalar_one())
    for day in skip:
        conn.execute(text("INSERT INTO booking_pattern_exceptions (pattern_id, on_date) VALUES (:p, :d)"),
                     {"p": pattern_id, "d": day})
    slot_ids = []
    for day in days:
        starts_at, ends_at = slot_range(day, start, end)
        slot_id = _insert_slot(conn, facility_id=centre["id"], pattern_id=pattern_id, service=service,
                               starts_at=starts_at, ends_at=ends_at, places_by_age=places)
        if slot_id is not None:
            slot_ids.append(int(slot_id))
    return {"id": pattern_id, "facility_id": centre["id"], "dates": days, "slot_ids": slot_ids}


# Free places of a slot for an age: its places minus the active (booked or confirmed) bookings of that age.
FREE_SQL = """
    (COALESCE((s.places_by_age ->> CAST(:age AS text))::int, 0)
     - (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.child_age = :age
        AND b.status IN ('booked', 'confirmed')))
"""


def search_slots(conn: Connection, *, lat: float, lon: float, age: int, radius_m: float | None = None,
                 area_geojson_4326: str | None = None, day: date | None = None, at: datetime | None = None,
                 service: str | None = None, include_full: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """Bookable slots near (lat, lon) for a child of class age ``age``, nearest first, then earliest.

    Parameters
    ----------
    lat, lon
        Where the parent is, EPSG:4326 degrees.
    radius_m
        Geodesic search radius in metres; or ``area_geojson_4326`` (e.g. a walking isochrone) instead.
    day
        Slots starting on this Korean calendar day; ``at`` = slots covering this moment (aware). Neither:
        slots not yet ended.
    include_full
        Also return slots without a free place (their waiting lists can be joined).
    """
    validate_point(lat=lat, lon=lon)
    if age not in range(6):
        raise InvalidQuery(f"age must be 0 to 5 (got {age})", param="age")
    if (radius_m is None) == (area_geojson_4326 is None):
        raise InvalidQuery("give a radius or an area", param="radius_m")
    clauses = ["NOT s.cancelled", "f.status IN ('active', 'reopened')"]
    params: dict[str, Any] = {"lat": lat, "lon": lon, "age": age, "limit": limit}
    if radius_m is not None:
        clauses.append("ST_DWithin(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r)")
        params["r"] = radius_m
    else:
        clauses.append("ST_Intersects(f.geom_4326, ST_SetSRID(ST_GeomFromGeoJSON(:area), 4326))")
        params["area"] = area_geojson_4326
    if day is not None:
        clauses.append("s.starts_at >= :day_start AND s.starts_at < :day_end")
        params["day_start"] = datetime.combine(day, time(0), SEOUL_TZ)
        params["day_end"] = datetime.combine(day + timedelta(days=1), time(0), SEOUL_TZ)
    if at is not None:
        clauses.append("s.starts_at <= :at AND s.ends_at > :at")
        params["at"] = at
    else:
        clauses.append("s.ends_at > :now")
        params["now"] = datetime.now(UTC)
    if service is not None:
        clauses.append("s.service = :service")
        params["service"] = service
    free_filter = sql.SQL("") if include_full else sql.SQL("AND {free} > 0").format(free=sql.SQL(FREE_SQL))
    clauses.append("COALESCE((s.places_by_age ->> CAST(:age AS text))::int, 0) > 0")
    statement = sql.SQL("""
        SELECT s.id, s.service, s.starts_at, s.ends_at, s.places_by_age, {free} AS free_places,
               f.code AS facility_code, f.name AS facility_name, f.phone, ST_X(f.geom_4326) AS lon,
               ST_Y(f.geom_4326) AS lat,
               ST_Distance(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)
                   AS distance_m,
               (SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'waiting') AS waiting
        FROM booking_slots s JOIN facilities f ON f.id = s.facility_id
        WHERE {where} {free_filter}
        ORDER BY distance_m, s.starts_at, s.id
        LIMIT :limit
    """).format(free=sql.SQL(FREE_SQL), where=sql.SQL(" AND ").join(sql.SQL(c) for c in clauses),
                free_filter=free_filter)
    rows = conn.execute(composed(conn, statement), params).mappings().all()
    return [dict(r) for r in rows]


def list_for_centre(conn: Connection, *, facility_id: int, now: datetime | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    """A centre's slots not yet ended, earliest first, with places, active bookings and waiting ones by age
    (``{"2": 3}``)."""
    rows = conn.execute(text("""
        SELECT s.id, s.service, s.starts_at, s.ends_at, s.places_by_age, s.cancelled, s.pattern_id,
               COALESCE((SELECT jsonb_object_agg(a.age, a.n) FROM (
                   SELECT CAST(child_age AS text) AS age, count(*) AS n FROM bookings b
                   WHERE b.slot_id = s.id AND b.status IN ('booked', 'confirmed') GROUP BY child_age) a),
                   '{}'::jsonb) AS active_by_age,
               COALESCE((SELECT jsonb_object_agg(w.age, w.n) FROM (
                   SELECT CAST(child_age AS text) AS age, count(*) AS n FROM bookings b
                   WHERE b.slot_id = s.id AND b.status = 'waiting' GROUP BY child_age) w),
                   '{}'::jsonb) AS waiting_by_age
        FROM booking_slots s WHERE s.facility_id = :f AND s.ends_at > :now
        ORDER BY s.starts_at, s.id LIMIT :limit
    """), {"f": facility_id, "now": now or datetime.now(UTC), "limit": limit}).mappings().all()
    return [dict(r) for r in rows]
