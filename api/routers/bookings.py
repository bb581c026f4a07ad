"""Holiday, night, 24-hour, hourly and emergency care: slots published by centres, search, booking with a
waiting list, cancellation, confirmation by staff, emergency requests. Handlers parse input and call
``geo.booking``; every write is one ``WriteTx`` (all or nothing), audited by ``geo.booking``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ClientIp, CurrentUser, IdempotencyKeyDep, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.schemas.accounts import NoControl
from api.schemas.bookings import BookingBody, EmergencyAcceptBody, EmergencyBody, PatternBody, SlotBody
from api.security import authorize
from geo.auth import limits
from geo.auth.policy import Action
from geo.booking import bookings, emergency, slots
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery
from geo.isochrones import isochrone
from geo.validation import MAX_ID, korean_wall_clock, validate_distance_m

# Every problem the booking operations answer (problem+json bodies, see api/openapi.py); 422 and 503 are added
# to every operation there.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A request body that is not JSON"},
    401: {"description": "Not authenticated (writes and personal lists need a session or a bearer token)"},
    403: {"description": "The role may not do this here (policy: geo/auth/policy.py)"},
    404: {"description": "No such centre, slot, booking or request"},
    409: {"description": "Full (`reason=full`), past the cut-off, already taken, or no road network loaded"},
    429: {"description": "An abuse limit (docs/accounts.md) is used up; retry after `Retry-After` seconds"},
}
router = APIRouter(prefix="/bookings", tags=["bookings"], responses=PROBLEMS, route_class=WriteRoute)
# Row ids (bigint sequences) and 어린이집코드 in paths.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
CodePath = Annotated[str, Path(min_length=1, max_length=40), NoControl]
STATUS_PATTERN = "^(booked|confirmed|cancelled|waiting)$"


def _centre(conn: Any, code: str, user: Any) -> dict[str, Any]:
    centre = slots.facility_for_booking(conn, code)
    authorize(user, Action.manage_bookings, facility_id=centre["id"], district_code=centre["district_code"])
    return centre


@router.post("/centres/{code}/slots", status_code=201, summary="Publish one slot (staff of the centre)")
def create_slot(code: CodePath, body: SlotBody, user: CurrentUser, tx: WriteTx,
                _key: IdempotencyKeyDep) -> dict[str, Any]:
    """A date, a time range (an end at or before the start is the next morning) and places by age."""
    conn = tx.connection()
    _centre(conn, code, user)
    slot_id = slots.create_slot(conn, facility_code=code, service=body.service, day=body.date, start=body.start,
                                end=body.end, places_by_age=body.places_by_age)
    return {"id": slot_id}


@router.post("/centres/{code}/patterns", status_code=201,
             summary="Publish a recurring pattern with exceptions (staff of the centre)")
def create_pattern(code: CodePath, body: PatternBody, user: CurrentUser, tx: WriteTx,
                   _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Every ``weekday`` (0 = Monday) or every Korean public holiday (``on_holidays``) from ``valid_from`` to
    ``valid_until``; ``skip_holidays`` leaves public holidays out; ``exceptions`` are days without a slot."""
    conn = tx.connection()
    _centre(conn, code, user)
    created = slots.create_pattern(
        conn, facility_code=code, service=body.service, weekday=body.weekday, on_holidays=body.on_holidays,
        skip_holidays=body.skip_holidays, start=body.start, end=body.end, places_by_age=body.places_by_age,
        valid_from=body.valid_from, valid_until=body.valid_until, exceptions=body.exceptions)
    return created


@router.get("/slots", summary="Bookable slots near a point (GeoJSON FeatureCollection, nearest first)")
def search(session: SessionDep, settings: SettingsDep,
           lat: Annotated[float, Query(ge=-90, le=90)], lon: Annotated[float, Query(ge=-180, le=180)],
           age: Annotated[int, Query(ge=0, le=5, description="the child's class age (만 N세반)")],
           radius_m: Annotated[float | None, Query(gt=0)] = None,
           walk_minutes: Annotated[float | None, Query(gt=0, le=60,
                                                       description="walking time via the road network")] = None,
           on: Annotated[date | None, Query(description="slots starting on this day (Korean time)")] = None,
           at: Annotated[datetime | None, Query(description="slots covering this moment")] = None,
           service: Annotated[str | None, Query(max_length=20), NoControl] = None,
           include_full: bool = False,
           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Each feature is a slot at its centre's point with ``free_places`` for ``age`` and its waiting list.
    Give ``radius_m`` (default 2,000 m) or ``walk_minutes`` (needs an imported road network, else 409)."""
    conn = session.connection()
    area = None
    if walk_minutes is not None:
        if radius_m is not None:
            raise InvalidQuery("give radius_m or walk_minutes, not both", param="walk_minutes")
        import json

        area = json.dumps(isochrone(conn, lat=lat, lon=lon, minutes=walk_minutes, mode="walk",
                                    settings=settings, facility_limit=1).geometry_4326)
    elif radius_m is None:
        radius_m = 2000.0
    if radius_m is not None:
        validate_distance_m(radius_m, param="radius_m", settings=settings)
    at_aware = korean_wall_clock(at, param="at").replace(tzinfo=SEOUL_TZ) if at is not None else None
    rows = slots.search_slots(conn, lat=lat, lon=lon, age=age, radius_m=radius_m, area_geojson_4326=area, day=on,
                              at=at_aware, service=service, include_full=include_full, limit=limit)
    return {"type": "FeatureCollection", "features": [_feature(r) for r in rows]}


def _feature(row: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k not in ("lon", "lat")}
    for key in ("starts_at", "ends_at"):
        props[key] = props[key].astimezone(SEOUL_TZ).isoformat()
    props["slot_id"] = props.pop("id")
    return {"type": "Feature", "id": row["id"], "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": props}


@router.post("", status_code=201, summary="Book a slot, or join its waiting list (parents)")
def book(body: BookingBody, user: CurrentUser, tx: WriteTx, settings: SettingsDep,
         ip: ClientIp, _key: IdempotencyKeyDep) -> dict[str, Any]:
    """409 ``reason=full`` when no place is left and ``join_waitlist`` is false; with it, a ``waiting`` booking
    with its ``waiting_position``. An SMS to the parent's verified phone is queued in the same transaction
    (``phone`` in the body is ignored). 429 past the limits per account, person, address and phone."""
    authorize(user, Action.book_care)
    conn = tx.connection()
    limits.check_parent_action(conn, settings, kind="booking", user_id=user.user_id, client_ip=ip)
    result = bookings.book(conn, slot_id=body.slot_id, parent_user_id=user.user_id, child_age=body.child_age,
                           phone=body.phone, lang=body.lang, child_name=body.child_name,
                           join_waitlist=body.join_waitlist)
    limits.check_texts(conn, settings, phone=result["phone"])
    return result


@router.get("/mine", summary="My bookings (parents)")
def mine(user: CurrentUser, session: SessionDep) -> list[dict[str, Any]]:
    """Newest first, with the waiting-list position of waiting ones."""
    authorize(user, Action.book_care)
    return bookings.list_for_parent(session.connection(), parent_user_id=user.user_id)


@router.post("/{booking_id}/cancel", summary="Cancel (the parent, before the cut-off; or the centre's staff)")
def cancel(booking_id: IdPath, user: CurrentUser, tx: WriteTx, settings: SettingsDep) -> dict[str, Any]:
    """Frees the place and promotes the waiting list in order (each promoted parent gets an SMS)."""
    conn = tx.connection()
    facility_id = bookings.booking_facility_id(conn, booking_id)
    as_centre = user.role.value != "parent"
    if as_centre:
        authorize(user, Action.manage_bookings, facility_id=facility_id)
    result = bookings.cancel(conn, booking_id=booking_id, actor_user_id=user.user_id, as_centre=as_centre,
                             cutoff=timedelta(hours=settings.booking.cancel_cutoff_hours))
    return result


@router.post("/{booking_id}/confirm", summary="Confirm a booking (staff of the centre)")
def confirm(booking_id: IdPath, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """``booked`` → ``confirmed``; audited, SMS queued."""
    conn = tx.connection()
    authorize(user, Action.manage_bookings, facility_id=bookings.booking_facility_id(conn, booking_id))
    result = bookings.confirm(conn, booking_id=booking_id, actor_user_id=user.user_id)
    return result


@router.get("/centres/{code}", summary="A centre's bookings (its staff)")
def centre_bookings(code: CodePath, user: CurrentUser, session: SessionDep,
                    status: Annotated[str | None, Query(max_length=10, pattern=STATUS_PATTERN)] = None,
                    ) -> list[dict[str, Any]]:
    """By slot start, then booking order."""
    conn = session.connection()
    centre = _centre(conn, code, user)
    return bookings.list_for_centre(conn, facility_id=centre["id"], status=status)


@router.get("/emergency/nearest", summary="Nearest centres with a free place now (public)")
def emergency_nearest(session: SessionDep, settings: SettingsDep,
                      lat: Annotated[float, Query(ge=-90, le=90)], lon: Annotated[float, Query(ge=-180, le=180)],
                      age: Annotated[int, Query(ge=0, le=5)],
                      radius_m: Annotated[float | None, Query(gt=0)] = None,
                      limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[dict[str, Any]]:
    """"Tonight, near here, age 2": one row per centre (its slot covering now), nearest first."""
    radius = validate_distance_m(radius_m or settings.booking.emergency_radius_m, param="radius_m", settings=settings)
    return emergency.nearest_free_now(session.connection(), lat=lat, lon=lon, age=age, radius_m=radius,
                                      at=datetime.now(UTC), limit=limit)


@router.post("/emergency", status_code=201, summary="Ask the centres nearby for emergency care (parents)")
def emergency_request(body: EmergencyBody, user: CurrentUser, tx: WriteTx,
                      settings: SettingsDep, ip: ClientIp, _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Open until one centre accepts (first come); lists the centres that may accept it. The acceptance is
    texted to the parent's verified phone (``phone`` in the body is ignored). 429 past the limits."""
    authorize(user, Action.book_care)
    limits.check_parent_action(tx.connection(), settings, kind="emergency", user_id=user.user_id, client_ip=ip)
    limits.check_texts(tx.connection(), settings, phone=bookings.parent_phone(tx.connection(), user.user_id))
    radius = validate_distance_m(body.radius_m or settings.booking.emergency_radius_m, param="radius_m",
                                 settings=settings)
    result = emergency.create_request(tx.connection(), parent_user_id=user.user_id, lat=body.lat, lon=body.lon,
                                      child_age=body.child_age, phone=body.phone, lang=body.lang, radius_m=radius,
                                      hours=body.hours)
    return result


@router.get("/emergency/open", summary="Open emergency requests a centre may accept (its staff)")
def emergency_open(user: CurrentUser, session: SessionDep,
                   centre: Annotated[str, Query(max_length=40), NoControl]) -> list[dict[str, Any]]:
    """Oldest first, with the distance to the centre."""
    conn = session.connection()
    facility = _centre(conn, centre, user)
    return emergency.open_requests_near(conn, facility_id=facility["id"])


@router.post("/emergency/{request_id}/accept", summary="Accept an emergency request (staff of a centre nearby)")
def emergency_accept(request_id: IdPath, body: EmergencyAcceptBody, user: CurrentUser,
                     tx: WriteTx) -> dict[str, Any]:
    """The first acceptance wins; later ones are 409 ``reason=taken``. The parent gets an SMS."""
    conn = tx.connection()
    facility = _centre(conn, body.centre, user)
    result = emergency.accept(conn, request_id=request_id, facility_id=facility["id"], actor_user_id=user.user_id)
    return result
