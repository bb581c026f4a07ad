"""The portal's inspection pages (지도점검).

Officers (``/portal/officer/inspections``): the 구's risk list with the reasons for each rank → plan a visit → the
inspection page (record the visit against the checklist; findings with corrective orders and deadlines; close a
finding after the centre's answer, or reopen it; close the inspection). Centre staff
(``/portal/staff/centres/{code}/inspections``): their centre's findings, and an answer form for each order.

Every form posts without JavaScript (CSRF token; a 303 to the page after success); a refusal re-renders the page
with the message next to its field. Everything goes through ``geo.inspections`` (one transition table, audited).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection

from api.deps import PageForm, PageLang, PageUser, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.portal.i18n import Translator
from api.portal.render import PORTAL, login_redirect, page, see_other
from api.routers.portal_staff import GROUP_LABELS
from api.security import authorize
from geo.auth.accounts import Principal
from geo.auth.policy import Action, Role
from geo.domain import SEOUL_TZ
from geo.errors import IllegalTransition, InvalidQuery, NotFound
from geo.inspections import register as ins
from geo.inspections.checklist import RESULTS, checklist
from geo.inspections.risk import planning_list
from geo.settings import Settings

router = APIRouter(prefix=PORTAL, include_in_schema=False, route_class=WriteRoute)
CentreCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
Id = Annotated[int, Path(ge=1, le=2**62)]
RISK_SHOWN = 30


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


STATUS_LABELS: dict[str, str] = {
    "planned": _("Planned"), "visited": _("Visited"), "closed": _("Closed"), "cancelled": _("Cancelled"),
    "open": _("Open"), "ordered": _("Correction ordered"), "answered": _("Answered"), "overdue": _("Overdue"),
}
RESULT_LABELS: dict[str, str] = {"compliant": _("Compliant"), "violation": _("Violation"),
                                 "not_checked": _("Not checked")}
COMPONENT_TEXT: dict[str, str] = {
    "vacancy_missing": _("Never reported its vacancies"),
    "vacancy_stale": _("Vacancy report {days} days old"),
    "over_capacity": _("{enrolled} children enrolled for a capacity of {capacity}"),
    "class_ratio": _("{group}: {enrolled} children where the classes allow {limit}"),
    "open_findings": _("{count} finding(s) not closed"),
    "overdue_findings": _("{count} correction(s) past the deadline"),
    "recent_findings": _("{count} finding(s) closed in the last {days} days"),
    "complaints": _("{count} complaint(s) in the last {days} days"),
    "never_visited": _("Never inspected"),
    "visit_overdue": _("Last inspected {days} days ago"),
}


def component_text(t: Translator, code: str, facts: dict[str, Any]) -> str:
    """A score component as a sentence in the reader's language (a class group by its name)."""
    shown = {k: "-" if v is None else v for k, v in facts.items()}
    if "group" in shown and shown["group"] in GROUP_LABELS:
        shown["group"] = t(GROUP_LABELS[shown["group"]])
    return t(COMPONENT_TEXT[code], **shown)


def _today() -> date:
    return datetime.now(SEOUL_TZ).date()


def _date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidQuery(f"{field}: not a date (YYYY-MM-DD)", param=field) from None


def error_text(t: Translator, exc: InvalidQuery | IllegalTransition) -> str:
    """A refusal in the reader's language."""
    if isinstance(exc, IllegalTransition):
        return t("This is not possible in the current state ({state}).",
                 state=t(STATUS_LABELS.get(str(exc.extra.get("state")), str(exc.extra.get("state")))))
    param = str(exc.extra.get("param") or "")
    if "past" in exc.detail:
        return t("Choose today or a later day.")
    if "not a date" in exc.detail:
        return t("Enter a date (YYYY-MM-DD).")
    if param.endswith(".note") or "empty" in exc.detail:
        return t("Write what was found or done here.")
    return t("Please check this field.")


# --- officers ----------------------------------------------------------------------------------------------------

def _district(user: Principal, requested: str | None) -> str | None:
    """The 구 an officer works in (a city admin chooses one with ``?district=``)."""
    if user.role is Role.city_admin:
        return requested
    return user.district_code


def _risk_page(request: Request, t: Translator, user: Principal, conn: Connection, settings: Settings,
               district: str | None, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
               status: int = 200) -> HTMLResponse:
    ranked = [] if district is None else planning_list(conn, district, stale_after_days=settings.vacancy.stale_days,
                                                        limit=RISK_SHOWN)
    rows = [{"rank": r.rank, "code": r.code, "name": r.name, "score": r.score, "planned": r.planned,
             "reasons": [(c.points, component_text(t, c.code, c.facts)) for c in r.components]} for r in ranked]
    inspections = [] if district is None else ins.district_inspections(conn, district)
    return page(request, "inspection_list.html", t, user=user, nav="inspections", status=status, district=district,
                rows=rows, inspections=inspections, status_labels=STATUS_LABELS, errors=errors or {},
                values=values or {}, default_date=(_today() + timedelta(days=7)).isoformat())


@router.get("/officer/inspections", response_model=None)
def officer_inspections(request: Request, t: PageLang, user: PageUser, session: SessionDep, settings: SettingsDep,
                        district: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None
                        ) -> HTMLResponse | RedirectResponse:
    """The risk list with reasons, and the 구's inspections."""
    if user is None:
        return login_redirect(request)
    chosen = _district(user, district)
    authorize(user, Action.plan_inspections, district_code=chosen)
    return _risk_page(request, t, user, session.connection(), settings, chosen)


@router.post("/officer/inspections", response_model=None)
def plan_visit(request: Request, t: PageLang, user: PageUser, tx: WriteTx, settings: SettingsDep,
               form: PageForm) -> HTMLResponse | RedirectResponse:
    """Plan a visit to a centre of the list."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    code = form.get("code", "")
    facility = ins.facility(conn, code)
    authorize(user, Action.plan_inspections, facility_id=facility.id, district_code=facility.district_code)
    field = f"planned_for_{code}"
    try:
        with tx.begin_nested():
            made = ins.plan(conn, facility_code=code, planned_for=_date(form.get("planned_for", ""), "planned_for"),
                            reason=form.get("reason") or None, actor_user_id=user.user_id)
    except (InvalidQuery, IllegalTransition) as exc:
        return _risk_page(request, t, user, conn, settings, facility.district_code, status=422,
                          errors={field: error_text(t, exc)}, values={field: form.get("planned_for", "")})
    return see_other(f"{PORTAL}/officer/inspections/{made['id']}")


def _item_text(t: Translator, item: dict[str, Any]) -> str:
    return str(item["ko"] if t.lang == "ko" else item["en"])


def _inspection_page(request: Request, t: Translator, user: Principal, conn: Connection, inspection_id: int, *,
                     errors: dict[str, str] | None = None, values: dict[str, str] | None = None, message: str = "",
                     status: int = 200) -> HTMLResponse:
    view = ins.get_inspection(conn, inspection_id)
    for item in view["items"]:
        item["text"] = _item_text(t, item)
    texts = {i["code"]: i["text"] for i in view["items"]}
    return page(request, "inspection_detail.html", t, user=user, nav="inspections", status=status, ins=view,
                results=RESULTS, result_labels=RESULT_LABELS, status_labels=STATUS_LABELS, item_texts=texts,
                errors=errors or {}, values=values or {}, message=message,
                default_deadline=(_today() + timedelta(days=30)).isoformat())


def _officer_inspection(user: Principal, conn: Connection, inspection_id: int) -> dict[str, Any]:
    view = ins.get_inspection(conn, inspection_id)
    facility = ins.facility(conn, view["centre"])
    authorize(user, Action.plan_inspections, facility_id=facility.id, district_code=facility.district_code)
    return view


@router.get("/officer/inspections/{inspection_id}", response_model=None)
def inspection_detail(request: Request, inspection_id: Id, t: PageLang, user: PageUser, session: SessionDep,
                      done: str = "") -> HTMLResponse | RedirectResponse:
    """Record the visit, order corrections, close."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    _officer_inspection(user, conn, inspection_id)
    return _inspection_page(request, t, user, conn, inspection_id, message=t("Saved.") if done else "")


# A change to an inspection, given the connection and the acting officer's user id.
Change = Callable[[Connection, int], Any]


def _inspection_action(request: Request, t: Translator, user: Principal | None, tx: Any, inspection_id: int,
                       field: str, values: dict[str, str], act: Change) -> HTMLResponse | RedirectResponse:
    """Run ``act(conn, actor_user_id)`` on an inspection of the officer's 구; a refusal shows next to ``field``."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    _officer_inspection(user, conn, inspection_id)
    try:
        with tx.begin_nested():
            act(conn, user.user_id)
    except (InvalidQuery, IllegalTransition) as exc:
        param = str(exc.extra.get("param") or "")
        where = field
        if param.startswith("results.") and param.count(".") == 2:
            where = "note_" + param.split(".")[1]
        return _inspection_page(request, t, user, conn, inspection_id, errors={where: error_text(t, exc)},
                                values=values, status=409 if isinstance(exc, IllegalTransition) else 422)
    return see_other(f"{PORTAL}/officer/inspections/{inspection_id}?done=1")


@router.post("/officer/inspections/{inspection_id}/visit", response_model=None)
def record_visit(request: Request, inspection_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                 form: PageForm) -> HTMLResponse | RedirectResponse:
    """The checklist's results (a violation needs a note; it becomes a finding)."""
    codes = checklist().codes
    results = {c: (form.get(f"result_{c}", "not_checked"), form.get(f"note_{c}") or None) for c in codes}
    return _inspection_action(request, t, user, tx, inspection_id, "visit", dict(form),
                              lambda conn, actor: ins.record_visit(conn, inspection_id, results=results,
                                                            actor_user_id=actor))


@router.post("/officer/inspections/{inspection_id}/cancel", response_model=None)
def cancel_visit(request: Request, inspection_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                 form: PageForm) -> HTMLResponse | RedirectResponse:
    """Cancel a planned visit."""
    return _inspection_action(request, t, user, tx, inspection_id, "cancel", {},
                              lambda conn, actor: ins.cancel(conn, inspection_id,
                                                      actor_user_id=actor))


@router.post("/officer/inspections/{inspection_id}/close", response_model=None)
def close_visit(request: Request, inspection_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                form: PageForm) -> HTMLResponse | RedirectResponse:
    """Close the inspection (every finding closed)."""
    return _inspection_action(request, t, user, tx, inspection_id, "close", {},
                              lambda conn, actor: ins.close_inspection(conn, inspection_id,
                                                                actor_user_id=actor))


@router.post("/officer/inspections/{inspection_id}/findings", response_model=None)
def add_finding(request: Request, inspection_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                form: PageForm) -> HTMLResponse | RedirectResponse:
    """Another finding on a checklist item."""
    return _inspection_action(request, t, user, tx, inspection_id, "description", dict(form),
                              lambda conn, actor: ins.add_finding(conn, inspection_id, item_code=form.get("item", ""),
                                                           description=form.get("description", ""),
                                                           actor_user_id=actor))


def _finding_action(request: Request, t: Translator, user: Principal | None, tx: Any, finding_id: int,
                    field: str, values: dict[str, str], act: Change) -> HTMLResponse | RedirectResponse:
    if user is None:
        return login_redirect(request)
    inspection_id = int(ins.get_finding(tx.connection(), finding_id)["inspection_id"])
    return _inspection_action(request, t, user, tx, inspection_id, f"{field}_{finding_id}",
                              {f"{k}_{finding_id}": v for k, v in values.items()}, act)


@router.post("/officer/findings/{finding_id}/order", response_model=None)
def order(request: Request, finding_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
          form: PageForm) -> HTMLResponse | RedirectResponse:
    """A corrective order with its deadline."""
    def act(conn: Connection, actor: int) -> Any:
        return ins.order(conn, finding_id, order_text=form.get("order_text", ""),
                         deadline=_date(form.get("deadline", ""), "deadline"),
                         actor_user_id=actor)
    field = "deadline" if form.get("order_text", "").strip() else "order_text"
    return _finding_action(request, t, user, tx, finding_id, field, dict(form), act)


@router.post("/officer/findings/{finding_id}/close", response_model=None)
def close_finding(request: Request, finding_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                  form: PageForm) -> HTMLResponse | RedirectResponse:
    """Accept the answer (or a correction on the spot) and close the finding."""
    return _finding_action(request, t, user, tx, finding_id, "close_note", dict(form),
                           lambda conn, actor: ins.close_finding(conn, finding_id, note=form.get("close_note") or None,
                                                          actor_user_id=actor))


@router.post("/officer/findings/{finding_id}/reopen", response_model=None)
def reopen(request: Request, finding_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
           form: PageForm) -> HTMLResponse | RedirectResponse:
    """Refuse the answer with a reason and a new deadline."""
    def act(conn: Connection, actor: int) -> Any:
        return ins.reopen(conn, finding_id, reason=form.get("reason", ""),
                          deadline=_date(form.get("deadline", ""), "deadline"),
                          actor_user_id=actor)
    field = "reopen_deadline" if form.get("reason", "").strip() else "reason"
    return _finding_action(request, t, user, tx, finding_id, field, dict(form), act)


# --- centre staff ------------------------------------------------------------------------------------------------

def _staff_page(request: Request, t: Translator, user: Principal, conn: Connection, code: str, *,
                errors: dict[str, str] | None = None, values: dict[str, str] | None = None, message: str = "",
                status: int = 200) -> HTMLResponse:
    facility = ins.facility(conn, code)
    items = {i.code: (i.ko if t.lang == "ko" else i.en) for i in checklist().items}
    return page(request, "inspection_staff.html", t, user=user, nav="staff", status=status, centre=facility,
                findings=ins.findings(conn, facility_code=code), item_texts=items, status_labels=STATUS_LABELS,
                errors=errors or {}, values=values or {}, message=message)


def _staff_check(user: Principal, conn: Connection, code: str) -> Any:
    facility = ins.facility(conn, code)
    authorize(user, Action.answer_findings, facility_id=facility.id, district_code=facility.district_code)
    return facility


@router.get("/staff/centres/{code}/inspections", response_model=None)
def staff_findings(request: Request, code: CentreCode, t: PageLang, user: PageUser, session: SessionDep,
                   done: str = "") -> HTMLResponse | RedirectResponse:
    """The centre's findings and the orders to answer."""
    if user is None:
        return login_redirect(request)
    conn = session.connection()
    _staff_check(user, conn, code)
    message = t("Your answer is sent to the district office.") if done else ""
    return _staff_page(request, t, user, conn, code, message=message)


@router.post("/staff/centres/{code}/findings/{finding_id}/answer", response_model=None)
def staff_answer(request: Request, code: CentreCode, finding_id: Id, t: PageLang, user: PageUser, tx: WriteTx,
                 form: PageForm) -> HTMLResponse | RedirectResponse:
    """Answer an order: what was corrected, with the evidence."""
    if user is None:
        return login_redirect(request)
    conn = tx.connection()
    facility = _staff_check(user, conn, code)
    finding = ins.get_finding(conn, finding_id)
    if finding["centre"] != facility.code:
        raise NotFound(f"no finding {finding_id} at centre {code}", param="finding_id", value=finding_id)
    field = f"answer_text_{finding_id}"
    try:
        with tx.begin_nested():
            ins.answer(conn, finding_id, answer_text=form.get("answer_text", ""), actor_user_id=user.user_id)
    except (InvalidQuery, IllegalTransition) as exc:
        return _staff_page(request, t, user, conn, code, errors={field: error_text(t, exc)},
                           values={field: form.get("answer_text", "")},
                           status=409 if isinstance(exc, IllegalTransition) else 422)
    return see_other(f"{PORTAL}/staff/centres/{code}/inspections?done=1")
