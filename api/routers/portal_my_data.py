"""The portal's "my data" page: everything held about the account and its children (``geo.privacy.export``), its
download as JSON or as a zip of CSV files, and deleting the account (``geo.privacy.erasure.delete_account``, after
the password; the page says what happens to applications, bookings, the waitlist log and alerts)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ClientIp, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.messages import error_message
from api.portal.render import PORTAL, login_redirect, page
from api.routers.auth import REAUTHENTICATION_REFUSALS, clear_session_cookies
from api.routers.portal_account import Text
from geo.auth.accounts import Principal
from geo.errors import Conflict, DolbomError
from geo.privacy import export
from geo.privacy.erasure import delete_account

router = APIRouter(prefix=f"{PORTAL}/account", include_in_schema=False, route_class=WriteRoute)
MAX_ROWS_SHOWN = 20
REFUSALS: tuple[type[Exception], ...] = (*REAUTHENTICATION_REFUSALS, Conflict)


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


SECTION_LABELS: dict[str, str] = {
    "account": _("Account"), "identity": _("Identity verification (본인인증)"), "children": _("Children"),
    "claims": _("Priority claims"), "applications": _("Applications"), "offers": _("Offers of a place"),
    "bookings": _("Care bookings"), "emergency_requests": _("Emergency care requests"), "alerts": _("Alerts"),
    "notices": _("Notices"), "notifications": _("Texts and mails sent"), "sessions": _("Sessions and tokens"),
    "audit": _("Record of changes (audit)"),
}


def _page(request: Request, t: Translator, user: Principal, data: dict, *, errors: dict[str, str],
          status: int = 200) -> HTMLResponse:
    return page(request, "my_data.html", t, user=user, nav="data", status=status, errors=errors, data=data,
                sections=export.SECTIONS, section_labels=SECTION_LABELS, max_rows=MAX_ROWS_SHOWN)


@router.get("/data", response_model=None)
def my_data(request: Request, t: PageLang, user: PageUser, session: SessionDep) -> HTMLResponse | RedirectResponse:
    """What is held about the account, section by section, with the downloads and the deletion form."""
    if user is None:
        return login_redirect(request)
    return _page(request, t, user, export.export_account(session.connection(), user_id=user.user_id), errors={})


def _download(body: bytes, media_type: str, suffix: str) -> Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(body, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="dolbom-my-data-{stamp}.{suffix}"',
        "Cache-Control": "no-store"})


@router.get("/data.json", response_model=None)
def my_data_json(request: Request, user: PageUser, session: SessionDep) -> Response:
    """The whole export as one JSON file."""
    if user is None:
        return login_redirect(request)
    data = export.export_account(session.connection(), user_id=user.user_id)
    return _download(export.to_json(data), "application/json", "json")


@router.get("/data.zip", response_model=None)
def my_data_zip(request: Request, user: PageUser, session: SessionDep) -> Response:
    """The whole export as a zip of CSV files, one per section."""
    if user is None:
        return login_redirect(request)
    data = export.export_account(session.connection(), user_id=user.user_id)
    return _download(export.to_csv_zip(data), "application/zip", "zip")


@router.post("/delete", response_model=None)
def delete_my_account(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
                      ip: ClientIp, password: Text = "") -> HTMLResponse | RedirectResponse:
    """Delete the account after its password; a wrong password is shown inline and still counts towards the
    lockout (committed, as in the API's ``DELETE /auth/me``)."""
    if user is None:
        return login_redirect(request)
    try:
        delete_account(tx.connection(), settings, user_id=user.user_id, password=password, client_ip=ip)
    except REFUSALS as exc:
        assert isinstance(exc, DolbomError)
        data = export.export_account(tx.connection(), user_id=user.user_id)
        return _page(request, t, user, data, errors={"password": error_message(t, exc)}, status=422)
    response = page(request, "account_deleted.html", t, user=None)
    clear_session_cookies(response)
    return response
