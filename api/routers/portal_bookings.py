"""The portal's care-booking pages for parents: find holiday, night (야간연장), 24-hour and hourly (시간제) slots
near home for a day, a time and a child's age; book one or join its waiting list; see "my bookings" with their
status and the texts exactly as they were sent; cancel. Emergency care: the nearest free place now, and a request
the centres nearby can accept. Every page calls the same ``geo.booking`` functions as the API's ``/bookings``
routes (texts go to the phone of the parent's 본인인증, the same abuse limits apply)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.deps import ClientIp, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.messages import error_message
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_account import Text, field_of, form_date
from api.security import authorize
from geo.auth import limits
from geo.auth.accounts import Principal, get_user
from geo.auth.policy import Action
from geo.booking import bookings, emergency, outbox, slots
from geo.domain import SEOUL_TZ
from geo.errors import Conflict, DolbomError, InvalidQuery
from geo.search.places import search_places
from geo.settings import Settings
from geo.validation import MAX_ID, validate_point

router = APIRouter(prefix=PORTAL, include_in_schema=False, route_class=WriteRoute)
BookingId = Annotated[int, Path(ge=1, le=MAX_ID)]
Short = Annotated[str, Query(max_length=100)]
T = TypeVar("T")
RADII_M = (1000, 2000, 3000, 5000)
AGES = tuple(range(6))
POINT_RE = re.compile(r"\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*")  # "37.556, 126.910"


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


SERVICE_LABELS: dict[str, str] = {
    "holiday": _("Holiday care (휴일보육)"),
    "extended_hours": _("Night care (야간연장)"),
    "twenty_four_hour": _("24-hour care"),
    "hourly": _("Hourly care (시간제보육)"),
}
BOOKING_STATUS_LABELS: dict[str, str] = {
    "booked": _("booked"), "confirmed": _("confirmed by the centre"), "waiting": _("waiting"),
    "cancelled": _("cancelled"),
}
REQUEST_STATUS_LABELS: dict[str, str] = {"open": _("open: waiting for a centre"), "accepted": _("accepted"),
                                         "expired": _("expired")}
TEXT_STATUS_LABELS: dict[str, str] = {"pending": _("being sent"), "sent": _("sent"), "failed": _("not delivered")}
BY_REASON: dict[str, str] = {
    "full": _("No place is left for this age. Join the waiting list instead."),
    "closed": _("This slot can no longer be booked."),
    "cutoff": _("It is too late to cancel here. Call the centre."),
    "duplicate": _("You already hold a booking of this slot for this child."),
    "identity_not_verified": _("Verify your identity (본인인증) before booking care."),
    "taken": _("Another centre accepted this request already, or it has expired."),
    "cancelled": _("This booking is already cancelled."),
    "confirmed": _("This booking is already confirmed."),
    "waiting": _("A waiting booking cannot be confirmed."),
}
BY_PARAM: dict[str, str] = {
    "near": _("No place found by that name. Try a 구 or 동 name, or an address."),
    "on": _("Enter a date (YYYY-MM-DD)."),
    "date": _("Enter a date (YYYY-MM-DD)."),
    "valid_from": _("Enter a date (YYYY-MM-DD)."),
    "at": _("Enter a time such as 18:30."),
    "start": _("Enter a time such as 18:30."),
    "end": _("Enter a time such as 18:30."),
    "age": _("Choose the child's age (0 to 5)."),
    "child_age": _("This slot has no places for that age."),
    "service": _("Choose a service this centre offers."),
    "places_by_age": _("Enter places from 0 to 200 for each age, at least one place in all."),
    "weekday": _("Choose a day of the week, or public holidays."),
    "valid_until": _("The last day must be on or after the first, and at most a year later."),
    "hours": _("Enter the hours of care needed, 1 to 24."),
    "slot_id": _("Choose a slot."),
    "kind": _("Choose one day, every week or every public holiday."),
    "booking_id": _("This booking is not at this centre."),
    **{f"places_{age}": _("Enter a whole number from 0 to 200.") for age in range(6)},
}


def booking_error(t: Translator, exc: DolbomError) -> str:
    """A refused booking action in the reader's language."""
    reason, param = exc.extra.get("reason"), exc.extra.get("param")
    if isinstance(reason, str) and reason in BY_REASON:
        return t(BY_REASON[reason])
    if isinstance(exc, Conflict) and param == "start":
        return t("This centre already publishes a slot for that service and time.")
    if isinstance(exc, InvalidQuery) and isinstance(param, str) and param in BY_PARAM:
        return t(BY_PARAM[param])
    return error_message(t, exc)


def run(tx: Session, t: Translator, fn: Callable[[], T]) -> tuple[T | None, dict[str, str]]:
    """``fn()`` in a savepoint: its result, or (None, errors by field) with its writes undone."""
    try:
        with tx.begin_nested():
            return fn(), {}
    except DolbomError as exc:
        return None, {field_of(exc): booking_error(t, exc)}


def form_time(value: str, *, param: str) -> time:
    """``18:30``, ``1830`` or ``18`` (Korean wall clock); ``InvalidQuery`` otherwise."""
    match = re.fullmatch(r"\s*(\d{1,2})(?::?(\d{2}))?\s*", value)
    try:
        if match is None:
            raise ValueError(value)
        return time(int(match.group(1)), int(match.group(2) or 0))
    except ValueError as exc:
        raise InvalidQuery(f"{value!r} is not a time (HH:MM)", param=param) from exc


def when_text(starts_at: datetime, ends_at: datetime) -> str:
    """``2026-10-03 08:00-20:00`` in Korean time (the next day's end is shown with its date)."""
    a, b = starts_at.astimezone(SEOUL_TZ), ends_at.astimezone(SEOUL_TZ)
    end = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%m-%d %H:%M}"
    return f"{a:%Y-%m-%d %H:%M}–{end}"


def _verified(conn: Connection, user: Principal) -> bool:
    return get_user(conn, user.user_id)["verified_at"] is not None


def _home(conn: Connection, settings: Settings, near: str) -> tuple[float, float, str]:
    """(lat, lon, label) of home: a point typed as ``lat, lon`` (EPSG:4326 degrees), else the first place the
    place search finds for ``near``."""
    text_in = near.strip()
    if not text_in:
        raise InvalidQuery("where is home?", param="near")
    point = POINT_RE.fullmatch(text_in)
    if point is not None:
        lat, lon = float(point.group(1)), float(point.group(2))
        try:
            validate_point(lat=lat, lon=lon)
        except InvalidQuery as exc:
            raise InvalidQuery(str(exc.detail), param="near") from exc
        return lat, lon, f"{lat:.5f}, {lon:.5f}"
    try:
        found = search_places(conn, query=text_in, settings=settings, limit=1)
    except InvalidQuery as exc:
        raise InvalidQuery(str(exc.detail), param="near") from exc
    if not found:
        raise InvalidQuery(f"no place {text_in!r}", param="near")
    return found[0].lat, found[0].lon, found[0].label


def _search(conn: Connection, settings: Settings, values: dict[str, str]) -> dict[str, Any]:
    """The slots the search form asks for (an ``InvalidQuery`` names its field)."""
    lat, lon, label = _home(conn, settings, values["near"])
    if not values["age"].isdigit() or int(values["age"]) not in AGES:
        raise InvalidQuery("age 0 to 5", param="age")
    day = form_date(values["on"], param="on")
    at = datetime.combine(day, form_time(values["at"], param="at"), SEOUL_TZ) if values["at"].strip() else None
    service = values["service"] or None
    if service is not None and service not in SERVICE_LABELS:
        raise InvalidQuery("unknown service", param="service")
    radius = int(values["radius_m"]) if values["radius_m"].isdigit() and int(values["radius_m"]) in RADII_M else 2000
    rows = slots.search_slots(conn, lat=lat, lon=lon, age=int(values["age"]), radius_m=radius,
                              day=None if at else day, at=at, service=service, include_full=True, limit=50)
    for row in rows:
        row["when"] = when_text(row["starts_at"], row["ends_at"])
    return {"label": label, "rows": rows, "age": int(values["age"])}


def _mine(conn: Connection, user: Principal) -> list[dict[str, Any]]:
    mine = bookings.list_for_parent(conn, parent_user_id=user.user_id)
    for b in mine:
        b["when"] = when_text(b["starts_at"], b["ends_at"])
        b["texts"] = outbox.texts_of(conn, prefix=f"booking:{b['id']}:")
    return mine


def _bookings_page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings, *,
                   values: dict[str, str], errors: dict[str, str], message: str = "",
                   status: int = 200) -> HTMLResponse:
    found = None
    search_errors: dict[str, str] = {}
    if values.get("near", "").strip() and not errors:
        try:
            with conn.begin_nested():
                found = _search(conn, settings, values)
        except DolbomError as exc:
            search_errors = {field_of(exc): booking_error(t, exc)}
            status = 422
    return page(request, "bookings.html", t, user=user, nav="bookings", status=status, values=values,
                errors={**errors, **search_errors}, message=message, found=found, verified=_verified(conn, user),
                mine=_mine(conn, user), services=SERVICE_LABELS, radii=RADII_M, ages=AGES,
                status_labels=BOOKING_STATUS_LABELS, text_labels=TEXT_STATUS_LABELS,
                cutoff_hours=f"{settings.booking.cancel_cutoff_hours:g}")


def _default_values(**given: str) -> dict[str, str]:
    today = datetime.now(UTC).astimezone(SEOUL_TZ).date()
    return {"near": "", "on": today.isoformat(), "at": "", "age": "2", "service": "", "radius_m": "2000", **given}


@router.get("/bookings", response_model=None)
def bookings_page(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
                  near: Short = "", on: Short = "", at: Short = "", age: Short = "2", service: Short = "",
                  radius_m: Short = "2000", done: Short = "") -> HTMLResponse | RedirectResponse:
    """Search slots near home (when ``near`` is given), my bookings with their texts."""
    if user is None:
        return login_redirect(request)
    values = _default_values(near=near, at=at, age=age, service=service, radius_m=radius_m)
    if on:
        values["on"] = on
    messages = {"booked": t("Booked. The text below is what your phone receives."),
                "waiting": t("You are on the waiting list. The text below is what your phone receives."),
                "cancelled": t("The booking is cancelled.")}
    return _bookings_page(request, t, user, session.connection(), settings, values=values, errors={},
                          message=messages.get(done, ""))


@router.post("/bookings", response_model=None)
def book(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep, ip: ClientIp,
         slot_id: Text = "", child_age: Text = "", join_waitlist: Text = "", near: Text = "", on: Text = "",
         at: Text = "", service: Text = "", radius_m: Text = "") -> HTMLResponse | RedirectResponse:
    """Book a slot (the API's ``POST /bookings``): the text goes to the verified phone, in the page's language."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_book() -> dict[str, Any]:
        authorize(user, Action.book_care)
        if not slot_id.isdigit() or not child_age.isdigit():
            raise InvalidQuery("choose a slot", param="slot_id")
        limits.check_parent_action(conn, settings, kind="booking", user_id=user.user_id, client_ip=ip)
        made = bookings.book(conn, slot_id=int(slot_id), parent_user_id=user.user_id, child_age=int(child_age),
                             lang=t.lang, join_waitlist=bool(join_waitlist))
        limits.check_texts(conn, settings, phone=made["phone"])
        return made

    made, errors = run(tx, t, do_book)
    if made is None:
        values = _default_values(near=near, at=at, age=child_age, service=service, radius_m=radius_m)
        if on:
            values["on"] = on
        return _bookings_page(request, t, user, conn, settings, values=values,
                              errors={"_": next(iter(errors.values()))}, status=409)
    return see_other(f"{PORTAL}/bookings?done={made['status']}#booking-{made['id']}")


@router.post("/bookings/{booking_id}/cancel", response_model=None)
def cancel(request: Request, booking_id: BookingId, t: PageLang, user: PageUser, tx: WriteTx,
           settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    """Cancel my booking or leave the waiting list (until the cut-off); the waiting list moves up."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_cancel() -> dict[str, Any]:
        authorize(user, Action.book_care)
        return bookings.cancel(conn, booking_id=booking_id, actor_user_id=user.user_id, as_centre=False,
                               cutoff=timedelta(hours=settings.booking.cancel_cutoff_hours))

    done, errors = run(tx, t, do_cancel)
    if done is None:
        return _bookings_page(request, t, user, conn, settings, values=_default_values(),
                              errors={"_": next(iter(errors.values()))}, status=409)
    return see_other(f"{PORTAL}/bookings?done=cancelled#booking-{booking_id}")


def _emergency_page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings, *,
                    values: dict[str, str], errors: dict[str, str], message: str = "",
                    status: int = 200) -> HTMLResponse:
    nearest = None
    if values.get("near", "").strip() and not errors:
        try:
            with conn.begin_nested():
                lat, lon, label = _home(conn, settings, values["near"])
                if not values["age"].isdigit() or int(values["age"]) not in AGES:
                    raise InvalidQuery("age 0 to 5", param="age")
                rows = emergency.nearest_free_now(conn, lat=lat, lon=lon, age=int(values["age"]),
                                                  radius_m=settings.booking.emergency_radius_m)
                for row in rows:
                    row["when"] = when_text(row["starts_at"], row["ends_at"])
                nearest = {"label": label, "rows": rows}
        except DolbomError as exc:
            errors = {field_of(exc): booking_error(t, exc)}
            status = 422
    requests = emergency.list_for_parent(conn, parent_user_id=user.user_id)
    now = datetime.now(UTC)
    for r in requests:
        r["status"] = "expired" if r["status"] == "open" and r["needed_until"] <= now else r["status"]
        r["until"] = r["needed_until"].astimezone(SEOUL_TZ).strftime("%Y-%m-%d %H:%M")
        r["texts"] = outbox.texts_of(conn, prefix=f"emergency:{r['id']}:")
    return page(request, "bookings_emergency.html", t, user=user, nav="bookings", status=status, values=values,
                errors=errors, message=message, nearest=nearest, requests=requests, ages=AGES,
                verified=_verified(conn, user), services=SERVICE_LABELS, request_labels=REQUEST_STATUS_LABELS,
                text_labels=TEXT_STATUS_LABELS, radius_km=f"{settings.booking.emergency_radius_m / 1000:g}")


@router.get("/bookings/emergency", response_model=None)
def emergency_page(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
                   near: Short = "", age: Short = "2", sent: Short = "") -> HTMLResponse | RedirectResponse:
    """The nearest centres with a free place now (when ``near`` is given) and my emergency requests."""
    if user is None:
        return login_redirect(request)
    message = t("Your request is sent to the centres nearby. The first to accept it texts you.") if sent else ""
    return _emergency_page(request, t, user, session.connection(), settings, values={"near": near, "age": age},
                           errors={}, message=message)


@router.post("/bookings/emergency", response_model=None)
def emergency_request(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
                      ip: ClientIp, near: Text = "", age: Text = "",
                      hours: Text = "12") -> HTMLResponse | RedirectResponse:
    """Ask the centres within the emergency radius of home (the API's ``POST /bookings/emergency``)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()

    def do_request() -> dict[str, Any]:
        authorize(user, Action.book_care)
        lat, lon, _label = _home(conn, settings, near)
        if not age.isdigit() or int(age) not in AGES:
            raise InvalidQuery("age 0 to 5", param="age")
        if not hours.isdigit() or not 1 <= int(hours) <= 24:
            raise InvalidQuery("hours 1 to 24", param="hours")
        limits.check_parent_action(conn, settings, kind="emergency", user_id=user.user_id, client_ip=ip)
        limits.check_texts(conn, settings, phone=bookings.parent_phone(conn, user.user_id))
        return emergency.create_request(conn, parent_user_id=user.user_id, lat=lat, lon=lon, child_age=int(age),
                                        lang=t.lang, radius_m=settings.booking.emergency_radius_m,
                                        hours=float(hours))

    made, errors = run(tx, t, do_request)
    if made is None:
        return _emergency_page(request, t, user, conn, settings, values={"near": near, "age": age, "hours": hours},
                               errors=errors, status=422)
    return see_other(f"{PORTAL}/bookings/emergency?sent=1#request-{made['id']}")
