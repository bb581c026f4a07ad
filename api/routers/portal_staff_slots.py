"""The portal's care-slot pages for a centre's staff: publish one slot or a weekly / public-holiday pattern with
places by age (refusals next to their field), the slots to come with their bookings (confirm, cancel), and the
open emergency requests near the centre (accept one: the first centre wins). The same ``geo.booking`` functions
as the API's ``/bookings/centres/{code}/...`` routes; the same policy (``Action.manage_bookings``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageForm, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_account import form_date
from api.routers.portal_bookings import (
    AGES,
    BOOKING_STATUS_LABELS,
    SERVICE_LABELS,
    Short,
    form_time,
    run,
    when_text,
)
from api.security import authorize
from geo.auth.accounts import Principal
from geo.auth.policy import Action
from geo.booking import bookings, emergency, slots
from geo.booking.slots import MAX_PLACES
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery
from geo.settings import Settings
from geo.validation import MAX_ID

router = APIRouter(prefix=f"{PORTAL}/staff", include_in_schema=False, route_class=WriteRoute)
CentreCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
KINDS = ("once", "weekly", "holidays")


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


WEEKDAYS = (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"))
KIND_LABELS = {"once": _("One day"), "weekly": _("Every week on a day"), "holidays": _("Every public holiday")}


def _centre(user: Principal, conn: Connection, code: str) -> dict[str, Any]:
    """The centre, when this account manages its bookings (its staff, or a city admin); ``Forbidden`` otherwise."""
    centre = slots.facility_for_booking(conn, code)
    authorize(user, Action.manage_bookings, facility_id=centre["id"], district_code=centre["district_code"])
    return centre


def _slots_page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings,
                centre: dict[str, Any], *, values: dict[str, str], errors: dict[str, str], message: str = "",
                status: int = 200) -> HTMLResponse:
    offered = [s for s in SERVICE_LABELS if s in centre["services"]]
    listed = slots.list_for_centre(conn, facility_id=centre["id"])
    by_slot: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for b in bookings.list_for_centre(conn, facility_id=centre["id"]):
        by_slot[b["slot_id"]].append(b)
    for s in listed:
        s["when"] = when_text(s["starts_at"], s["ends_at"])
        s["bookings"] = by_slot.get(s["id"], [])
    return page(request, "staff_slots.html", t, user=user, nav="staff", status=status, centre=centre,
                values=values, errors=errors, message=message, services=SERVICE_LABELS, offered=offered,
                slots=listed, ages=AGES, weekdays=WEEKDAYS, kinds=KIND_LABELS, status_labels=BOOKING_STATUS_LABELS,
                max_places=MAX_PLACES)


def _defaults(centre: dict[str, Any]) -> dict[str, str]:
    tomorrow = (datetime.now(UTC).astimezone(SEOUL_TZ) + timedelta(days=1)).date()
    offered = [s for s in SERVICE_LABELS if s in centre["services"]]
    return {"kind": "once", "service": offered[0] if offered else "", "date": tomorrow.isoformat(),
            "weekday": "6", "valid_from": tomorrow.isoformat(),
            "valid_until": (tomorrow + timedelta(days=90)).isoformat(), "skip_holidays": "",
            "start": "08:00", "end": "20:00", **{f"places_{a}": "0" for a in AGES}}


@router.get("/centres/{code}/slots", response_model=None)
def slots_page(request: Request, code: CentreCode, t: PageLang, user: PageUser, session: SessionDep,
               settings: SettingsDep, done: Short = "") -> HTMLResponse | RedirectResponse:
    """The publishing form and the centre's slots to come with their bookings."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    centre = _centre(user, conn, code)
    messages = {"published": t("Published. Parents can find and book it now."),
                "confirmed": t("The booking is confirmed; the parent gets a text."),
                "cancelled": t("The booking is cancelled; the parent gets a text and the waiting list moves up.")}
    return _slots_page(request, t, user, conn, settings, centre, values=_defaults(centre), errors={},
                       message=messages.get(done, ""))


def places_of(values: dict[str, str]) -> dict[str, int]:
    """Places by age from the form's ``places_0`` .. ``places_5`` (blank = 0)."""
    places: dict[str, int] = {}
    for age in AGES:
        raw = values.get(f"places_{age}", "").strip() or "0"
        if not raw.isdigit() or int(raw) > MAX_PLACES:
            raise InvalidQuery(f"places for age {age}: a whole number 0 to {MAX_PLACES}", param=f"places_{age}")
        if int(raw):
            places[str(age)] = int(raw)
    if not places:
        raise InvalidQuery("a slot needs at least one place", param="places_by_age")
    return places


@router.post("/centres/{code}/slots", response_model=None)
def publish(request: Request, code: CentreCode, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
            form: PageForm) -> HTMLResponse | RedirectResponse:
    """Publish one slot (``create_slot``) or a pattern (``create_pattern``); a refusal is shown at its field."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    centre = _centre(user, conn, code)
    values = {**_defaults(centre), **{k: v.strip() for k, v in form.items() if k != "csrf_token"}}
    values["skip_holidays"] = values.get("skip_holidays", "") if "skip_holidays" in form else ""

    def do_publish() -> Any:
        kind = values.get("kind", "")
        if kind not in KINDS:
            raise InvalidQuery("choose one day, weekly or holidays", param="kind")
        start, end = form_time(values["start"], param="start"), form_time(values["end"], param="end")
        places = places_of(values)
        if kind == "once":
            return slots.create_slot(conn, facility_code=code, service=values["service"],
                                     day=form_date(values["date"], param="date"), start=start, end=end,
                                     places_by_age=places)
        weekday = values["weekday"]
        if kind == "weekly" and (not weekday.isdigit() or int(weekday) > 6):
            raise InvalidQuery("weekday 0 to 6", param="weekday")
        return slots.create_pattern(
            conn, facility_code=code, service=values["service"], weekday=int(weekday) if kind == "weekly" else None,
            on_holidays=kind == "holidays", skip_holidays=bool(values["skip_holidays"]), start=start, end=end,
            places_by_age=places, valid_from=form_date(values["valid_from"], param="valid_from"),
            valid_until=form_date(values["valid_until"], param="valid_until"))

    made, errors = run(tx, t, do_publish)
    if made is None:
        if "places_by_age" in errors:  # the fieldset, not one field
            errors = {"places": errors["places_by_age"]}
        return _slots_page(request, t, user, conn, settings, centre, values=values, errors=errors, status=422)
    return see_other(f"{PORTAL}/staff/centres/{code}/slots?done=published")


def _booking_action(request: Request, t: Translator, user: Principal | None, tx: Any, settings: Settings,
                    code: str, booking_id: int, action: str) -> HTMLResponse | RedirectResponse:
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    centre = _centre(user, conn, code)

    def act() -> dict[str, Any]:
        if bookings.booking_facility_id(conn, booking_id) != centre["id"]:
            raise InvalidQuery(f"booking {booking_id} is not at centre {code}", param="booking_id")
        if action == "confirm":
            return bookings.confirm(conn, booking_id=booking_id, actor_user_id=user.user_id)
        return bookings.cancel(conn, booking_id=booking_id, actor_user_id=user.user_id, as_centre=True,
                               cutoff=timedelta(hours=settings.booking.cancel_cutoff_hours))

    done, errors = run(tx, t, act)
    if done is None:
        return _slots_page(request, t, user, conn, settings, centre, values=_defaults(centre),
                           errors={"_": next(iter(errors.values()))}, status=409)
    return see_other(f"{PORTAL}/staff/centres/{code}/slots?done={'confirmed' if action == 'confirm' else 'cancelled'}"
                     f"#slot-{done['slot_id']}")


@router.post("/centres/{code}/bookings/{booking_id}/confirm", response_model=None)
def confirm(request: Request, code: CentreCode, booking_id: RowId, t: PageLang, user: PageUser, tx: WriteTx,
            settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    """Confirm a booked place (``booked`` → ``confirmed``)."""
    return _booking_action(request, t, user, tx, settings, code, booking_id, "confirm")


@router.post("/centres/{code}/bookings/{booking_id}/cancel", response_model=None)
def cancel(request: Request, code: CentreCode, booking_id: RowId, t: PageLang, user: PageUser, tx: WriteTx,
           settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    """The centre cancels a booking (no cut-off); the waiting list moves up."""
    return _booking_action(request, t, user, tx, settings, code, booking_id, "cancel")


def _emergency_page(request: Request, t: Translator, user: Principal, conn: Connection, centre: dict[str, Any], *,
                    errors: dict[str, str], message: str = "", status: int = 200) -> HTMLResponse:
    requests = emergency.open_requests_near(conn, facility_id=centre["id"])
    for r in requests:
        r["from_text"] = r["needed_from"].astimezone(SEOUL_TZ).strftime("%Y-%m-%d %H:%M")
        r["until_text"] = r["needed_until"].astimezone(SEOUL_TZ).strftime("%Y-%m-%d %H:%M")
    return page(request, "staff_emergency.html", t, user=user, nav="staff", status=status, centre=centre,
                requests=requests, errors=errors, message=message)


@router.get("/centres/{code}/emergency", response_model=None)
def emergency_page(request: Request, code: CentreCode, t: PageLang, user: PageUser, session: SessionDep,
                   accepted: Short = "") -> HTMLResponse | RedirectResponse:
    """Open emergency requests whose radius reaches the centre, oldest first."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    centre = _centre(user, conn, code)
    message = t("You accepted the request; the parent gets a text with your phone number.") if accepted else ""
    return _emergency_page(request, t, user, conn, centre, errors={}, message=message)


@router.post("/centres/{code}/emergency/{request_id}/accept", response_model=None)
def accept(request: Request, code: CentreCode, request_id: RowId, t: PageLang, user: PageUser,
           tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Accept one request (the first centre wins; a later one is told it is taken)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    centre = _centre(user, conn, code)
    done, errors = run(tx, t, lambda: emergency.accept(conn, request_id=request_id, facility_id=centre["id"],
                                                       actor_user_id=user.user_id))
    if done is None:
        return _emergency_page(request, t, user, conn, centre, errors={"_": next(iter(errors.values()))},
                               status=409)
    return see_other(f"{PORTAL}/staff/centres/{code}/emergency?accepted={request_id}")
