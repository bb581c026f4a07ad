"""The portal's alert pages for parents: saved searches ("tell me when a 1세 place opens within 1 km of home") with
their messages, created with an explicit opt-in, paused, resumed, deleted; and the unsubscribe link of every
message (``/portal/alerts/unsubscribe/{token}``, no login: GET shows what it stops, only POST stops it, so that a
mail scanner following the link changes nothing). Every page calls ``geo.alerts.searches``."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import LANG_COOKIE, LANGUAGES, Translator
from api.portal.messages import error_message
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_account import Text, field_of
from geo.alerts import searches
from geo.alerts.searches import RADIUS_CHOICES_M, SavedSearchIn
from geo.auth.accounts import Principal, get_user
from geo.domain import SEOUL_TZ
from geo.errors import DolbomError, InvalidQuery, NotFound
from geo.validation import MAX_OFFSET

router = APIRouter(prefix=f"{PORTAL}/alerts", include_in_schema=False, route_class=WriteRoute)
AlertId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


SERVICE_LABELS: dict[str, str] = {
    "extended_hours": _("Extended hours"), "holiday": _("Holiday care"), "twenty_four_hour": _("24-hour care"),
    "disability_integrated": _("Integrated care for children with disabilities"),
    "multicultural": _("Multicultural"), "infant_only": _("Infants only"), "hourly": _("Hourly care"),
    "saturday": _("Saturday care"),
}
OUTBOX_STATUS_LABELS: dict[str, str] = {"pending": _("waiting to be sent"), "sent": _("sent"),
                                        "failed": _("not sent")}
QUIET_CHOICES: list[tuple[str, str]] = [("22-07", "22:00-07:00"), ("21-08", "21:00-08:00"),
                                        ("23-06", "23:00-06:00"), ("", "")]
# The form's field of each error ``param`` and what the page says.
ERRORS: dict[str, str] = {
    "place": _("No place found. Type an address, a 동 or 구, or a centre's name."),
    "opt_in": _("Tick the box to agree to receive these messages."),
    "channel": _("Texts go to the phone of your identity verification (본인인증). Verify first, or choose e-mail."),
    "radius_m": _("Choose one of the distances listed."),
    "child_age": _("Choose an age from 0 to 5."),
    "service": _("Choose one of the services listed."),
    "quiet_from": _("Choose one of the quiet hours listed."),
}


def alert_error(t: Translator, exc: DolbomError) -> tuple[str, str]:
    """(field, message) of a refused alert."""
    field = field_of(exc)
    if field in ERRORS:
        return ("quiet" if field == "quiet_from" else field), t(ERRORS[field])
    if exc.extra.get("reason") == "too_many_alerts":
        return "_", t("You have the most alerts an account may have. Delete one first.")
    return "_", error_message(t, exc)


def _page(request: Request, t: Translator, user: Principal, conn: Connection, *, errors: dict[str, str],
          values: dict[str, str], message: str = "", status: int = 200) -> HTMLResponse:
    account = get_user(conn, user.user_id)
    return page(request, "alerts.html", t, user=user, nav="alerts", status=status, errors=errors, values=values,
                message=message, searches=searches.list_searches(conn, owner_user_id=user.user_id),
                radii=RADIUS_CHOICES_M, service_labels=SERVICE_LABELS, status_labels=OUTBOX_STATUS_LABELS,
                quiet_choices=QUIET_CHOICES, tz=SEOUL_TZ, phone=account["verified_phone"], email=account["email"])


MESSAGES = {"created": _("The alert is on. We will tell you when a place opens."),
            "paused": _("The alert is paused."), "resumed": _("The alert is on again."),
            "deleted": _("The alert is deleted.")}


@router.get("", response_model=None)
def alerts(request: Request, t: PageLang, user: PageUser, session: SessionDep,
           done: str = "") -> HTMLResponse | RedirectResponse:
    """The parent's alerts with their messages, and the form for a new one."""
    if user is None:
        return login_redirect(request)
    message = t(MESSAGES[done]) if done in MESSAGES else ""
    return _page(request, t, user, session.connection(), errors={}, values={}, message=message)


def _quiet(code: str) -> tuple[time | None, time | None]:
    if not code:
        return None, None
    if code not in {c for c, _label in QUIET_CHOICES}:
        raise InvalidQuery("unknown quiet hours", param="quiet_from")
    start, end = code.split("-")
    return time(int(start)), time(int(end))


def _int(raw: str, param: str) -> int:
    if not raw.strip().isdigit() or len(raw.strip()) > 6:
        raise InvalidQuery(f"{param} must be a whole number", param=param)
    return int(raw)


@router.post("", response_model=None)
def create(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep, place: Text = "",
           radius_m: Text = "1000", child_age: Text = "1", service: Text = "", channel: Text = "sms",
           quiet: Text = "", opt_in: Text = "") -> HTMLResponse | RedirectResponse:
    """Save a search (the place through the place search); the form comes back with its error otherwise."""
    if user is None:
        return login_redirect(request)
    values = {"place": place, "radius_m": radius_m, "child_age": child_age, "service": service, "channel": channel,
              "quiet": quiet, "opt_in": opt_in}
    conn = tx.connection()
    try:
        with tx.begin_nested():
            found = searches.find_place(conn, query=place, settings=settings)
            quiet_from, quiet_until = _quiet(quiet)
            searches.create_search(conn, owner_user_id=user.user_id, search=SavedSearchIn(
                place_label=found.label, lon=found.lon, lat=found.lat, radius_m=_int(radius_m, "radius_m"),
                child_age=_int(child_age, "child_age"), service=service or None, channel=channel, lang=t.lang,
                quiet_from=quiet_from, quiet_until=quiet_until, opted_in=bool(opt_in)))
    except DolbomError as exc:
        field, text = alert_error(t, exc)
        return _page(request, t, user, conn, errors={field: text}, values=values, status=422)
    return see_other(f"{PORTAL}/alerts?done=created")


def _change(request: Request, user: Principal | None, tx: WriteTx, search_id: int, action: str) -> RedirectResponse:
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    if action == "delete":
        searches.delete_search(conn, owner_user_id=user.user_id, search_id=search_id)
    else:
        searches.set_active(conn, owner_user_id=user.user_id, search_id=search_id, active=action == "resume")
    done = {"pause": "paused", "resume": "resumed"}.get(action, "deleted")
    return see_other(f"{PORTAL}/alerts?done={done}")


@router.post("/{search_id}/pause", response_model=None)
def pause(request: Request, search_id: AlertId, user: PageUser, tx: WriteTx) -> RedirectResponse:
    """Pause an alert (messages waiting for the end of quiet hours are dropped)."""
    return _change(request, user, tx, search_id, "pause")


@router.post("/{search_id}/resume", response_model=None)
def resume(request: Request, search_id: AlertId, user: PageUser, tx: WriteTx) -> RedirectResponse:
    """Switch a paused alert on again."""
    return _change(request, user, tx, search_id, "resume")


@router.post("/{search_id}/delete", response_model=None)
def delete(request: Request, search_id: AlertId, user: PageUser, tx: WriteTx) -> RedirectResponse:
    """Delete an alert."""
    return _change(request, user, tx, search_id, "delete")


def _in_alert_language(request: Request, t: Translator, target: dict[str, Any]) -> Translator:
    """The alert's language (its messages') unless the reader chose one on this site (the cookie)."""
    return t if request.cookies.get(LANG_COOKIE) or target["lang"] not in LANGUAGES else Translator(target["lang"])


@router.get("/unsubscribe/{token}", response_model=None)
def unsubscribe_form(request: Request, token: Token, t: PageLang, session: SessionDep) -> HTMLResponse:
    """What the link stops, and the button that stops it (nothing changes on GET)."""
    try:
        target = searches.unsubscribe_target(session.connection(), token)
    except NotFound:
        return page(request, "alert_unsubscribe.html", t, user=None, target=None, token=token, done=False,
                    status=404)
    return page(request, "alert_unsubscribe.html", _in_alert_language(request, t, target), user=None,
                target=target, token=token, done=False)


@router.post("/unsubscribe/{token}", response_model=None)
def unsubscribe(request: Request, token: Token, t: PageLang, tx: WriteTx) -> HTMLResponse:
    """Stop the alert of the link (no login: the link is the proof)."""
    try:
        target = searches.unsubscribe(tx.connection(), token)
    except NotFound:
        return page(request, "alert_unsubscribe.html", t, user=None, target=None, token=token, done=False,
                    status=404)
    return page(request, "alert_unsubscribe.html", _in_alert_language(request, t, target), user=None,
                target=target, token=token, done=True)
