"""The portal's pages for centre staff: their centres, and a centre's vacancy report (children enrolled per class
group, free places per age) with the validation messages next to their fields. The report goes through
``geo.vacancy.reports.submit_report`` like the API's ``/vacancy/centres/{code}/reports``: history, audit, and the
live stream that the map follows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageForm, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.security import authorize
from geo.admission.parent_view import centre_summary
from geo.auth.accounts import Principal, get_user
from geo.auth.policy import Action
from geo.errors import InvalidReport
from geo.settings import Settings
from geo.vacancy.reports import AGES, GROUPS, VacancyReportIn, centre_status, facility_ref, submit_report

router = APIRouter(prefix=f"{PORTAL}/staff", include_in_schema=False, route_class=WriteRoute)
CentreCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
MAX_COUNT = 10_000


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


GROUP_LABELS: dict[str, str] = {
    "0": _("Age 0"), "1": _("Age 1"), "2": _("Age 2"), "3": _("Age 3"), "4": _("Age 4"), "5": _("Age 5"),
    "mixed_infant": _("Mixed, ages 0-2"), "mixed_toddler": _("Mixed, ages 3-5"), "special": _("Special needs"),
}


def field_name(param: str) -> str:
    """The form field of a report's ``param``: ``enrolled_by_age.2`` -> ``enrolled_2``."""
    kind, _dot, group = param.partition(".")
    prefix = {"enrolled_by_age": "enrolled", "free_by_age": "free"}.get(kind, kind)
    return f"{prefix}_{group}" if group else prefix


@router.get("", response_model=None)
def staff_home(request: Request, t: PageLang, user: PageUser, session: SessionDep) -> HTMLResponse | RedirectResponse:
    """The centres this account reports for."""
    if user is None:
        return login_redirect(request)
    codes = get_user(session.connection(), user.user_id)["facility_codes"]
    return page(request, "staff_home.html", t, user=user, nav="staff", codes=codes)


def _vacancy_page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings,
                  code: str, *, errors: dict[str, str], values: dict[str, str] | None = None, message: str = "",
                  status: int = 200) -> HTMLResponse:
    """The report form, filled with ``values`` (a refused post) or the centre's current figures."""
    current = centre_status(conn, code, stale_after_days=settings.vacancy.stale_days)
    summary = centre_summary(conn, code)
    classes = summary["classes_by_age"] or {}
    if values is None:
        enrolled, free = current.get("enrolled_by_age") or {}, current.get("free_by_age") or {}
        values = {**{f"enrolled_{g}": str(enrolled.get(g, 0)) for g in GROUPS},
                  **{f"free_{a}": str(free.get(a, 0)) for a in AGES}}
    return page(request, "staff_vacancy.html", t, user=user, nav="staff", status=status, errors=errors,
                values=values, message=message, centre=current, summary=summary, ages=AGES,
                groups=[g for g in GROUPS if int(classes.get(g) or 0) > 0 or g in AGES],
                classes=classes, group_labels=GROUP_LABELS)


def _check(user: Principal, conn: Connection, code: str) -> None:
    """Only the centre's staff (and those the policy allows) report its vacancies."""
    facility_id, district = facility_ref(conn, code)
    authorize(user, Action.report_vacancy, facility_id=facility_id, district_code=district)


@router.get("/centres/{code}/vacancy", response_model=None)
def vacancy_form(request: Request, code: CentreCode, t: PageLang, user: PageUser, session: SessionDep,
                 settings: SettingsDep, saved: str = "") -> HTMLResponse | RedirectResponse:
    """The centre's current figures in a form (staff of the centre)."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    _check(user, conn, code)
    message = t("The report is saved. The map shows it now.") if saved else ""
    return _vacancy_page(request, t, user, conn, settings, code, errors={}, message=message)


@router.post("/centres/{code}/vacancy", response_model=None)
def vacancy_report(request: Request, code: CentreCode, t: PageLang, user: PageUser, tx: WriteTx,
                   settings: SettingsDep, form: PageForm) -> HTMLResponse | RedirectResponse:
    """Submit the report (``submit_report``: checked against 정원 and class ratios); a refusal names its field."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    _check(user, conn, code)
    values = {k: v.strip() for k, v in form.items() if k.startswith(("enrolled_", "free_"))}

    def counts(prefix: str, keys: tuple[str, ...], field: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in keys:
            raw = values.get(f"{prefix}_{key}", "") or "0"
            if not raw.isdigit() or int(raw) > MAX_COUNT:
                raise InvalidReport(f"{field}.{key}: not a whole number >= 0", param=f"{field}.{key}")
            out[key] = int(raw)
        return out

    def submit() -> dict[str, Any]:
        report = VacancyReportIn(enrolled_by_age=counts("enrolled", GROUPS, "enrolled_by_age"),
                                 free_by_age=counts("free", AGES, "free_by_age"))
        return submit_report(conn, facility_code=code, report=report, author_user_id=user.user_id,
                             public_url=settings.server.public_url)

    try:
        with tx.begin_nested():
            submit()
    except InvalidReport as exc:
        param = str(exc.extra.get("param") or "")
        field = field_name(param) if "." in param else "enrolled_total"
        return _vacancy_page(request, t, user, conn, settings, code, values=values, status=422,
                             errors={field: report_message(t, exc)})
    return see_other(f"{PORTAL}/staff/centres/{code}/vacancy?saved=1")


def report_message(t: Translator, exc: InvalidReport) -> str:
    """A refused report in the reader's language (the limit the rules give, when there is one)."""
    if exc.extra.get("capacity") is not None:
        return t("{enrolled} children enrolled exceed the capacity of {capacity}.",
                 enrolled=exc.extra.get("enrolled"), capacity=exc.extra["capacity"])
    if exc.extra.get("limit") is not None:
        return t("At most {limit} here (the classes and the capacity allow no more).", limit=exc.extra["limit"])
    return t("Enter a whole number, 0 or more.")
