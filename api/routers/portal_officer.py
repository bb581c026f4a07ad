"""The portal's pages for district officers and the city admin.

- ``/portal/officer``: a 구 at a glance (``geo.analysis.district``): centres whose vacancy figures are stale or
  missing, free places against the waitlist queue per 행정동 and class age, the planner's blind spots and
  figures. An officer sees their own 구; the city admin picks one.
- ``/portal/officer/designations``: the register of service designations of the 구 with its history, the form
  to designate a centre and to end a designation, the conflicts with the official data, and the languages the
  centres declared (``geo.designations.register``, as the API's ``/designations`` routes).
- ``/portal/admin/users`` and ``/portal/admin/audit`` (city admin): accounts (find, create an officer or centre
  staff, disable, enable, reset 본인인증) and the audit trail (``geo.auth.directory``), as the API's ``/admin``.

Every decision of who may do what is ``authorize`` (``geo.auth.policy``): a refusal is the 403 page.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.messages import error_message
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_account import Text, attempt, form_date
from api.security import authorize
from geo.analysis import district as dash
from geo.auth import identity
from geo.auth.accounts import Principal, create_user, get_user, set_disabled
from geo.auth.directory import AuditFilter, actions, audit_entries, find_users
from geo.auth.policy import Action, Role
from geo.designations import register as reg
from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery, NotFound
from geo.validation import MAX_OFFSET, reject_control_characters

router = APIRouter(prefix=PORTAL, include_in_schema=False, route_class=WriteRoute)
DistrictQuery = Annotated[str, Query(max_length=5, pattern=r"^(\d{5})?$")]
DesignationId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
UserId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]
PER_PAGE = 50
CENTRE_CODE = re.compile(r"[0-9A-Za-z_-]{1,40}")


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


SERVICE_LABELS: dict[str, str] = {
    "extended_hours": _("Extended hours"),
    "holiday": _("Holiday care"),
    "twenty_four_hour": _("24-hour care"),
    "disability_integrated": _("Integrated care for children with disabilities"),
    "disability_specialised": _("Specialised care for children with disabilities"),
    "multicultural": _("Multicultural"),
    "infant_only": _("Infants only"),
    "hourly": _("Hourly care"),
    "after_school_dedicated": _("After-school, dedicated"),
    "after_school_integrated": _("After-school, integrated"),
    "saturday": _("Saturday care"),
}
ROLE_LABELS: dict[str, str] = {
    "parent": _("Parent"),
    "centre_staff": _("Centre staff"),
    "district_officer": _("District officer"),
    "city_admin": _("City admin"),
}
#: Roles the admin page creates (parents sign up themselves).
CREATABLE_ROLES = ("centre_staff", "district_officer", "city_admin")


def _text(value: str, param: str) -> str:
    """A form's text, stripped, free of control characters."""
    reject_control_characters(value, param=param)
    return value.strip()


def _district(user: Principal, conn: Connection, requested: str, action: Action) -> str | None:
    """The 구 a page is about: the requested one, else the officer's own; None for a city admin who has not
    picked one yet. ``authorize`` decides (another 구 than the officer's is refused)."""
    code = requested or user.district_code
    if code is None and user.role is Role.city_admin:
        return None
    authorize(user, action, district_code=code)
    if code is not None and dash.district_name(conn, code) is None:
        raise NotFound(f"no 구 {code}", param="district")
    return code


def _district_context(conn: Connection, code: str | None) -> dict[str, Any]:
    return {"district_code": code, "district_name": code and dash.district_name(conn, code),
            "districts": dash.districts(conn)}


# --- the district dashboard -----------------------------------------------------------------------------------


@router.get("/officer", response_model=None)
def dashboard(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
              district: DistrictQuery = "") -> HTMLResponse | RedirectResponse:
    """Stale centres, vacancy against the queue per 행정동, blind spots and the planner's figures of a 구."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    code = _district(user, conn, district, Action.read_district)
    context: dict[str, Any] = _district_context(conn, code)
    if code is not None:
        context.update(
            stale=dash.stale_centres(conn, code, stale_after_days=settings.vacancy.stale_days),
            stale_days=settings.vacancy.stale_days,
            pressure=dash.pressure_by_dong(conn, code),
            blind_spots=dash.blind_spots(conn, code),
            planner=dash.planner_figures(conn, code),
            ages=("0", "1", "2", "3", "4", "5"))
    return page(request, "officer_dashboard.html", t, user=user, nav="officer", **context)


# --- designations ---------------------------------------------------------------------------------------------


def _designations_page(request: Request, t: Translator, user: Principal, conn: Connection, code: str | None, *,
                       errors: dict[str, str], values: dict[str, str], message: str = "",
                       status: int = 200) -> HTMLResponse:
    context: dict[str, Any] = _district_context(conn, code)
    if code is not None:
        designations = reg.register(conn, district_code=code)
        context.update(
            designations=designations,
            history={d: [{**h, "at": h["at"].astimezone(SEOUL_TZ)} for h in events]
                     for d, events in reg.history(conn, [d["id"] for d in designations]).items()},
            conflicts=reg.conflicts(conn, district_code=code),
            declared=reg.declared_languages(conn, district_code=code),
            centres=dash.operating_centres(conn, code))
    return page(request, "officer_designations.html", t, user=user, nav="designations", status=status,
                errors=errors, values=values, message=message, services=reg.DESIGNABLE,
                service_labels=SERVICE_LABELS, today=reg.today_in_seoul().isoformat(), **context)


@router.get("/officer/designations", response_model=None)
def designations(request: Request, t: PageLang, user: PageUser, session: SessionDep, district: DistrictQuery = "",
                 done: str = "") -> HTMLResponse | RedirectResponse:
    """The register of the 구 and its forms."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    code = _district(user, conn, district, Action.manage_designations)
    message = {"created": t("The designation is saved. Search and the map show it now."),
               "ended": t("The designation ends on the day you chose.")}.get(done, "")
    return _designations_page(request, t, user, conn, code, errors={}, values={}, message=message)


@router.post("/officer/designations", response_model=None)
def designate(request: Request, t: PageLang, user: PageUser, tx: WriteTx, centre: Text = "", service: Text = "",
              authority: Text = "", valid_from: Text = "", valid_to: Text = "", note: Text = "",
              district: Text = "") -> HTMLResponse | RedirectResponse:
    """Designate a service to a centre of the 구 (the API's ``POST /centres/{code}/designations``)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    values = {"centre": centre, "service": service, "authority": authority, "valid_from": valid_from,
              "valid_to": valid_to, "note": note}

    code = centre.strip()
    known = CENTRE_CODE.fullmatch(code) is not None and reg.exists(conn, code)
    if known:
        # Who may designate at this centre is decided before the form is read: a refusal is the 403 page.
        facility_id, centre_district = reg.facility_district(conn, code)
        authorize(user, Action.manage_designations, facility_id=facility_id, district_code=centre_district)

    def run() -> dict[str, Any]:
        if not known:
            raise InvalidQuery("choose a centre of the list", param="centre")
        start = form_date(valid_from, param="valid_from")
        end = form_date(valid_to, param="valid_to") if valid_to.strip() else None
        return reg.designate(conn, facility_code=code, service=service.strip(),
                             authority=_text(authority, "authority"), valid_from=start, valid_to=end,
                             note=_text(note, "note") or None, actor_user_id=user.user_id)

    made, errors = attempt(tx, t, run)
    if made is None:
        shown = _district(user, conn, district if district.isdigit() and len(district) == 5 else "",
                          Action.manage_designations)
        return _designations_page(request, t, user, conn, shown, errors=errors, values=values, status=422)
    return see_other(f"{PORTAL}/officer/designations?" + urlencode({"district": made["district_code"],
                                                                    "done": "created"}))


@router.post("/officer/designations/{designation_id}/end", response_model=None)
def end_designation(request: Request, designation_id: DesignationId, t: PageLang, user: PageUser, tx: WriteTx,
                    valid_to: Text = "") -> HTMLResponse | RedirectResponse:
    """End a designation on a day (the API's ``POST /designations/{id}/end``)."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    current = reg.get(conn, designation_id)
    authorize(user, Action.manage_designations, district_code=current["district_code"])

    def run() -> dict[str, Any]:
        return reg.end(conn, designation_id, valid_to=form_date(valid_to, param="valid_to"),
                       actor_user_id=user.user_id)

    _ended, errors = attempt(tx, t, run)
    if errors:
        errors = {f"end-{designation_id}": message for message in errors.values()}
        return _designations_page(request, t, user, conn, current["district_code"], errors=errors, values={},
                                  status=422)
    return see_other(f"{PORTAL}/officer/designations?" + urlencode({"district": current["district_code"],
                                                                    "done": "ended"}))


# --- users and roles (city admin) -----------------------------------------------------------------------------


def _pages(total: int, number: int) -> dict[str, int]:
    return {"page": number, "pages": max(1, -(-total // PER_PAGE)), "total": total}


def _users_page(request: Request, t: Translator, user: Principal, conn: Connection, *, q: str, role: str,
                number: int, errors: dict[str, str], values: dict[str, str], message: str = "",
                status: int = 200) -> HTMLResponse:
    users, total = find_users(conn, query=q or None, role=role or None, limit=PER_PAGE,
                              offset=(number - 1) * PER_PAGE)
    create_errors = {k: v for k, v in errors.items() if not k.startswith("user-")}
    return page(request, "officer_users.html", t, user=user, nav="users", status=status, errors=errors,
                create_errors=create_errors,
                values=values, message=message, users=users, q=q, role=role, roles=ROLE_LABELS,
                creatable=CREATABLE_ROLES, districts=dash.districts(conn),
                query={"q": q, "role": role}, **_pages(total, number))


@router.get("/admin/users", response_model=None)
def users(request: Request, t: PageLang, user: PageUser, session: SessionDep,
          q: Annotated[str, Query(max_length=100)] = "", role: Annotated[str, Query(max_length=20)] = "",
          page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
          done: str = "") -> HTMLResponse | RedirectResponse:
    """Find accounts; create an officer or centre staff; disable, enable, reset 본인인증."""
    if user is None:
        return login_redirect(request)
    authorize(user, Action.manage_users)
    reject_control_characters(q, param="q")
    if role and role not in ROLE_LABELS:
        raise InvalidQuery(f"unknown role {role!r}", param="role")
    message = {"created": t("The account is created."), "disabled": t("The account is disabled."),
               "enabled": t("The account is enabled again."),
               "reset": t("The identity verification is reset; the holder verifies anew.")}.get(done, "")
    return _users_page(request, t, user, session.connection(), q=q, role=role, number=page_number, errors={},
                       values={}, message=message)


@router.post("/admin/users", response_model=None)
def create_account(request: Request, t: PageLang, user: PageUser, tx: WriteTx, email: Text = "",
                   password: Text = "", display_name: Text = "", role: Text = "", district_code: Text = "",
                   facility_codes: Text = "") -> HTMLResponse | RedirectResponse:
    """Create an account bound to a 구 (officer) or to centres (staff), audited (the API's ``POST /admin/users``)."""
    if user is None:
        return login_redirect(request)
    authorize(user, Action.manage_users)
    conn = tx.connection()
    values = {"email": email, "display_name": display_name, "role": role, "district_code": district_code,
              "facility_codes": facility_codes}

    def run() -> int:
        if role not in CREATABLE_ROLES:
            raise InvalidQuery("choose a role", param="role")
        codes = [c for c in facility_codes.replace(",", " ").split() if c]
        for code in codes:
            reject_control_characters(code, param="facility_codes")
        return create_user(conn, email=_text(email, "email"), password=password, role=role,
                           display_name=_text(display_name, "display_name") or None,
                           district_code=_text(district_code, "district_code") or None,
                           facility_codes=codes, actor_user_id=user.user_id)

    created, errors = attempt(tx, t, run)
    if created is None:
        return _users_page(request, t, user, conn, q="", role="", number=1, errors=errors, values=values,
                           status=422)
    return see_other(f"{PORTAL}/admin/users?" + urlencode({"q": get_user(conn, created)["email"],
                                                           "done": "created"}))


def _account_action(request: Request, t: Translator, user: Principal, tx: Any, user_id: int, done: str,
                    action: Action, fn: Any) -> HTMLResponse | RedirectResponse:
    authorize(user, action)
    conn = tx.connection()
    _result, errors = attempt(tx, t, fn)
    if errors:
        errors = {f"user-{user_id}": message for message in errors.values()}
        return _users_page(request, t, user, conn, q=get_user(conn, user_id)["email"], role="", number=1,
                           errors=errors, values={}, status=422)
    return see_other(f"{PORTAL}/admin/users?" + urlencode({"q": get_user(conn, user_id)["email"], "done": done}))


def _set_disabled(request: Request, t: Translator, user: Principal | None, tx: Any, user_id: int,
                  disabled: bool) -> HTMLResponse | RedirectResponse:
    if user is None:
        return login_redirect(request)
    return _account_action(request, t, user, tx, user_id, "disabled" if disabled else "enabled",
                           Action.manage_users,
                           lambda: set_disabled(tx.connection(), user_id=user_id, disabled=disabled,
                                                actor_user_id=user.user_id))


@router.post("/admin/users/{user_id}/disable", response_model=None)
def disable(request: Request, user_id: UserId, t: PageLang, user: PageUser,
            tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Disable an account (its sessions end at once)."""
    return _set_disabled(request, t, user, tx, user_id, disabled=True)


@router.post("/admin/users/{user_id}/enable", response_model=None)
def enable(request: Request, user_id: UserId, t: PageLang, user: PageUser,
           tx: WriteTx) -> HTMLResponse | RedirectResponse:
    """Enable an account again."""
    return _set_disabled(request, t, user, tx, user_id, disabled=False)


@router.post("/admin/users/{user_id}/identity/reset", response_model=None)
def reset_identity(request: Request, user_id: UserId, t: PageLang, user: PageUser, tx: WriteTx,
                   reason: Text = "") -> HTMLResponse | RedirectResponse:
    """Reset an account's 본인인증, with the reason for the audit trail."""
    if user is None:
        return login_redirect(request)
    return _account_action(request, t, user, tx, user_id, "reset", Action.reset_identity,
                           lambda: identity.reset_identity(tx.connection(), user_id=user_id,
                                                           actor_user_id=user.user_id, reason=reason))


# --- the audit trail (city admin) -----------------------------------------------------------------------------


@router.get("/admin/audit", response_model=None)
def audit(request: Request, t: PageLang, user: PageUser, session: SessionDep,
          actor: Annotated[str, Query(max_length=100)] = "", action: Annotated[str, Query(max_length=60)] = "",
          day_from: Annotated[str, Query(alias="from", max_length=20)] = "",
          day_to: Annotated[str, Query(alias="to", max_length=20)] = "",
          page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1) -> HTMLResponse | RedirectResponse:
    """The audit trail, newest first, filtered by actor, action and days, a page at a time."""
    if user is None:
        return login_redirect(request)
    authorize(user, Action.read_audit)
    conn = session.connection()
    values = {"actor": actor, "action": action, "from": day_from, "to": day_to}
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    total = 0
    try:
        for param, value in values.items():
            reject_control_characters(value, param=param)
        start: date | None = form_date(day_from, param="from") if day_from.strip() else None
        end: date | None = form_date(day_to, param="to") if day_to.strip() else None
        rows, total = audit_entries(conn, AuditFilter(actor=actor or None, action=action or None, day_from=start,
                                                      day_to=end), limit=PER_PAGE,
                                    offset=(page_number - 1) * PER_PAGE)
    except InvalidQuery as exc:
        field = exc.extra.get("param")
        errors = {field if isinstance(field, str) else "_": error_message(t, exc)}
    # Times as the days of the filter: Seoul time.
    rows = [{**r, "at": r["at"].astimezone(SEOUL_TZ)} for r in rows]
    return page(request, "officer_audit.html", t, user=user, nav="audit", status=422 if errors else 200,
                errors=errors, values=values, rows=rows, actions=actions(conn), query=values,
                **_pages(total, page_number))
