"""Emergency care: "tonight, near here, age 2" — the nearest centres with a free place now, and a request that
the centres nearby can accept, first come (one acceptance wins: a conditional UPDATE on an open request)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.auth.identity import require_verified
from geo.booking.bookings import check_phone, parent_phone
from geo.booking.outbox import enqueue
from geo.booking.slots import BOOKABLE_SERVICES, search_slots
from geo.booking.templates import check_lang
from geo.errors import Conflict, Forbidden, InvalidQuery, NotFound
from geo.validation import validate_point


def nearest_free_now(conn: Connection, *, lat: float, lon: float, age: int, radius_m: float,
                     at: datetime | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """Centres within ``radius_m`` (geodesic metres) with a slot covering ``at`` (default now) that has a free
    place for ``age``, nearest first, one row per centre (its slot ending last)."""
    at = at or datetime.now(UTC)
    slots = search_slots(conn, lat=lat, lon=lon, age=age, radius_m=radius_m, at=at, limit=1000)
    best: dict[str, dict[str, Any]] = {}
    for slot in slots:
        seen = best.get(slot["facility_code"])
        if seen is None or slot["ends_at"] > seen["ends_at"]:
            best[slot["facility_code"]] = slot
    return sorted(best.values(), key=lambda s: (s["distance_m"], s["facility_code"]))[:limit]


# Centres that may take an emergency request at (:lon, :lat) within :r metres: operating, with a bookable service.
NEARBY_CENTRES_SQL = """
    SELECT f.id, f.code, f.name, f.phone, ST_Distance(f.geom_4326::geography,
           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
    FROM facilities f
    WHERE f.status IN ('active', 'reopened') AND f.services && CAST(:services AS text[])
      AND ST_DWithin(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r)
"""
SERVICE_VALUES = [s.value for s in BOOKABLE_SERVICES]


def create_request(conn: Connection, *, parent_user_id: int, lat: float, lon: float, child_age: int,
                   phone: str | None = None, lang: str = "ko", radius_m: float, hours: float = 12.0,
                   now: datetime | None = None) -> dict[str, Any]:
    """Open an emergency request of a verified (본인인증) parent; returns it with the centres nearby that may
    accept it (nearest first). The text of its acceptance goes to the parent's verified phone; ``phone`` is only
    checked for shape and otherwise ignored (docs/accounts.md)."""
    require_verified(conn, parent_user_id, action="book_care")
    validate_point(lat=lat, lon=lon)
    if child_age not in range(6):
        raise InvalidQuery(f"child_age must be 0 to 5 (got {child_age})", param="child_age")
    if not 0 < hours <= 24:
        raise InvalidQuery("hours must be greater than 0 and at most 24", param="hours")
    if phone:
        check_phone(phone)
    phone, lang = parent_phone(conn, parent_user_id), check_lang(lang)
    now = now or datetime.now(UTC)
    request_id = int(conn.execute(text(
        "INSERT INTO emergency_requests (parent_user_id, child_age, phone, lang, lon, lat, radius_m, needed_from, "
        "needed_until) VALUES (:p, :a, :phone, :lang, :lon, :lat, :r, :f, :u) RETURNING id"),
        {"p": parent_user_id, "a": child_age, "phone": phone, "lang": lang, "lon": lon, "lat": lat, "r": radius_m,
         "f": now, "u": now + timedelta(hours=hours)}).scalar_one())
    audit(conn, actor_user_id=parent_user_id, action="emergency.create", entity="emergency_requests",
          entity_id=request_id, before=None, after={"child_age": child_age, "radius_m": radius_m})
    centres = conn.execute(text(NEARBY_CENTRES_SQL + " ORDER BY distance_m, f.code LIMIT 50"),
                           {"lon": lon, "lat": lat, "r": radius_m, "services": SERVICE_VALUES}).mappings().all()
    return {**get_request(conn, request_id),
            "centres": [{"code": c["code"], "name": c["name"], "distance_m": c["distance_m"]} for c in centres]}


def get_request(conn: Connection, request_id: int) -> dict[str, Any]:
    """One emergency request."""
    row = conn.execute(text(
        "SELECT r.id, r.parent_user_id, r.child_age, r.lon, r.lat, r.radius_m, r.needed_from, r.needed_until, "
        "r.status, f.code AS accepted_facility_code, r.accepted_at FROM emergency_requests r "
        "LEFT JOIN facilities f ON f.id = r.accepted_facility_id WHERE r.id = :id"),
        {"id": request_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no emergency request {request_id}", param="request_id")
    return dict(row)


def open_requests_near(conn: Connection, *, facility_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open, unexpired requests whose radius reaches the centre (what its staff may accept), oldest first."""
    rows = conn.execute(text("""
        SELECT r.id, r.child_age, r.needed_from, r.needed_until, r.created_at,
               ST_Distance(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)::geography)
                   AS distance_m
        FROM emergency_requests r, facilities f
        WHERE f.id = :f AND r.status = 'open' AND r.needed_until > :now
          AND ST_DWithin(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)::geography, r.radius_m)
        ORDER BY r.id
    """), {"f": facility_id, "now": now or datetime.now(UTC)}).mappings().all()
    return [dict(r) for r in rows]


def accept(conn: Connection, *, request_id: int, facility_id: int, actor_user_id: int,
           now: datetime | None = None) -> dict[str, Any]:
    """A centre takes the request; the first acceptance wins, later ones get ``Conflict``."""
    now = now or datetime.now(UTC)
    request = get_request(conn, request_id)
    centre = conn.execute(text(NEARBY_CENTRES_SQL + " AND f.id = :f"),
                          {"f": facility_id, "lon": request["lon"], "lat": request["lat"], "r": request["radius_m"],
                           "services": SERVICE_VALUES}).mappings().one_or_none()
    if centre is None:
        raise Forbidden("this centre is not near the request or offers no holiday/night/24-hour/hourly care")
    won = conn.execute(text(
        "UPDATE emergency_requests SET status = 'accepted', accepted_facility_id = :f, accepted_by_user_id = :u, "
        "accepted_at = :now WHERE id = :id AND status = 'open' AND needed_until > :now "
        "RETURNING parent_user_id, phone, lang"),
        {"f": facility_id, "u": actor_user_id, "now": now, "id": request_id}).mappings().one_or_none()
    if won is None:
        raise Conflict(f"emergency request {request_id} was already accepted or has expired", reason="taken")
    audit(conn, actor_user_id=actor_user_id, action="emergency.accept", entity="emergency_requests",
          entity_id=request_id, before={"status": "open"}, after={"status": "accepted", "facility_id": facility_id})
    if won["phone"]:  # the parent's verified phone; none: no text
        enqueue(conn, key=f"emergency:{request_id}:accepted", recipient=won["phone"], lang=won["lang"],
                template="emergency_accepted", centre=centre["name"], phone=centre["phone"] or "-")
    return get_request(conn, request_id)


def list_for_parent(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """A parent's emergency requests, newest first, with the accepting centre's name and phone."""
    rows = conn.execute(text(
        "SELECT r.id, r.child_age, r.needed_from, r.needed_until, r.status, r.accepted_at, r.radius_m, "
        "f.code AS accepted_facility_code, f.name AS accepted_facility_name, f.phone AS accepted_facility_phone "
        "FROM emergency_requests r LEFT JOIN facilities f ON f.id = r.accepted_facility_id "
        "WHERE r.parent_user_id = :p ORDER BY r.id DESC"), {"p": parent_user_id}).mappings().all()
    return [dict(r) for r in rows]
