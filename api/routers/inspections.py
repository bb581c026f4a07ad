"""어린이집 지도점검 over HTTP: the checklist (public), the risk-based planning list of a 구, complaints, planning
and recording visits against the checklist, findings with corrective orders, the centre's answers, closing.

Who may do what is ``geo.auth.policy``: ``plan_inspections`` (the 구's officer, the city), ``read_inspections``
(also the centre's staff), ``answer_findings`` (the centre's staff). A transition the table does not allow is a
409 problem (``IllegalTransition``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, IdempotencyKeyDep, SessionDep, SettingsDep, WriteRoute, WriteTx
from api.schemas.inspections import (
    AnswerIn,
    ChecklistOut,
    CloseIn,
    ComplaintIn,
    ComplaintOut,
    FindingIn,
    FindingList,
    FindingOut,
    InspectionList,
    InspectionOut,
    OrderIn,
    OverdueOut,
    PlanIn,
    ReopenIn,
    RiskListOut,
    VisitIn,
)
from api.security import authorize
from geo.auth.accounts import Principal
from geo.auth.policy import Action
from geo.inspections import register as ins
from geo.inspections.checklist import checklist
from geo.inspections.risk import WEIGHTS, planning_list
from geo.validation import MAX_OFFSET

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json, RFC 9457)"},
    403: {"description": "Not the 구's officer, the centre's staff or the city (problem+json)"},
    404: {"description": "No such centre, inspection or finding (problem+json, RFC 9457)"},
    409: {"description": "The transition table does not allow this in the current state (problem+json)"},
}
router = APIRouter(tags=["inspections"], responses=PROBLEMS, route_class=WriteRoute)
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$", description="어린이집코드")]
Id = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
District = Annotated[str, Query(pattern=r"^\d{5}$", max_length=5, description="The 구 (5 digits)")]


def _on_inspection(user: Principal, conn: Any, inspection_id: int, action: Action) -> dict[str, Any]:
    current = ins.get_inspection(conn, inspection_id)
    facility = ins.facility(conn, current["centre"])
    authorize(user, action, facility_id=facility.id, district_code=facility.district_code)
    return current


def _on_finding(user: Principal, conn: Any, finding_id: int, action: Action) -> dict[str, Any]:
    current = ins.get_finding(conn, finding_id)
    facility = ins.facility(conn, current["centre"])
    authorize(user, action, facility_id=facility.id, district_code=facility.district_code)
    return current


@router.get("/inspections/checklist", response_model=ChecklistOut, summary="The inspection checklist (public)")
def get_checklist() -> dict[str, Any]:
    """The latest version: each item with its code, Korean and English text and legal basis."""
    items = checklist()
    return {"version": items.version, "sha256": items.sha256, "source": items.source,
            "items": [vars(i) for i in items.items]}


@router.get("/inspections/risk", response_model=RiskListOut, summary="The 구's centres ranked by risk")
def risk(district: District, user: CurrentUser, session: SessionDep, settings: SettingsDep,
         limit: Annotated[int, Query(ge=1, le=2000)] = 500) -> dict[str, Any]:
    """Every operating centre with a transparent score: the sum of named components, each with its facts."""
    authorize(user, Action.plan_inspections, district_code=district)
    ranked = planning_list(session.connection(), district, stale_after_days=settings.vacancy.stale_days,
                           limit=limit)
    return {"district_code": district, "weights": WEIGHTS,
            "centres": [{**vars(r), "components": [vars(c) for c in r.components]} for r in ranked]}


@router.get("/inspections", response_model=InspectionList, summary="The 구's inspections")
def list_inspections(district: District, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Open inspections first, newest first."""
    authorize(user, Action.plan_inspections, district_code=district)
    return {"inspections": ins.district_inspections(session.connection(), district)}


@router.post("/centres/{code}/complaints", status_code=201, response_model=ComplaintOut,
             summary="Record a complaint about a centre")
def complaint(code: Code, body: ComplaintIn, user: CurrentUser, tx: WriteTx, _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Counted by the risk list for a year."""
    conn = tx.connection()
    facility = ins.facility(conn, code)
    authorize(user, Action.plan_inspections, facility_id=facility.id, district_code=facility.district_code)
    return ins.add_complaint(conn, facility_code=code, received_at=body.received_at, summary=body.summary,
                             source=body.source, actor_user_id=user.user_id)


@router.post("/centres/{code}/inspections", status_code=201, response_model=InspectionOut,
             summary="Plan a visit to a centre")
def plan(code: Code, body: PlanIn, user: CurrentUser, tx: WriteTx, _key: IdempotencyKeyDep) -> dict[str, Any]:
    """Against the latest checklist (its version and file hash are kept with the inspection)."""
    conn = tx.connection()
    facility = ins.facility(conn, code)
    authorize(user, Action.plan_inspections, facility_id=facility.id, district_code=facility.district_code)
    return ins.plan(conn, facility_code=code, planned_for=body.planned_for, reason=body.reason,
                    actor_user_id=user.user_id)


@router.get("/inspections/{inspection_id}", response_model=InspectionOut, summary="One inspection")
def get_inspection(inspection_id: Id, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """With the checklist results and the findings (the 구's officer, the centre's staff)."""
    return _on_inspection(user, session.connection(), inspection_id, Action.read_inspections)


@router.post("/inspections/{inspection_id}/visit", response_model=InspectionOut,
             summary="Record the visit against the checklist")
def visit(inspection_id: Id, body: VisitIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Each violation opens a finding (its note is the finding's description)."""
    conn = tx.connection()
    _on_inspection(user, conn, inspection_id, Action.plan_inspections)
    return ins.record_visit(conn, inspection_id, results={c: (r.result, r.note) for c, r in body.results.items()},
                            actor_user_id=user.user_id)


@router.post("/inspections/{inspection_id}/cancel", response_model=InspectionOut, summary="Cancel a planned visit")
def cancel(inspection_id: Id, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Only a planned visit."""
    conn = tx.connection()
    _on_inspection(user, conn, inspection_id, Action.plan_inspections)
    return ins.cancel(conn, inspection_id, actor_user_id=user.user_id)


@router.post("/inspections/{inspection_id}/close", response_model=InspectionOut, summary="Close an inspection")
def close_inspection(inspection_id: Id, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Only when every finding is closed."""
    conn = tx.connection()
    _on_inspection(user, conn, inspection_id, Action.plan_inspections)
    return ins.close_inspection(conn, inspection_id, actor_user_id=user.user_id)


@router.post("/inspections/{inspection_id}/findings", status_code=201, response_model=FindingOut,
             summary="Record a finding")
def add_finding(inspection_id: Id, body: FindingIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """On a visited inspection, on one checklist item."""
    conn = tx.connection()
    _on_inspection(user, conn, inspection_id, Action.plan_inspections)
    return ins.add_finding(conn, inspection_id, item_code=body.item, description=body.description,
                           actor_user_id=user.user_id)


@router.get("/centres/{code}/findings", response_model=FindingList, summary="A centre's findings")
def centre_findings(code: Code, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The 구's officer and the centre's staff."""
    conn = session.connection()
    facility = ins.facility(conn, code)
    authorize(user, Action.read_inspections, facility_id=facility.id, district_code=facility.district_code)
    return {"findings": ins.findings(conn, facility_code=code)}


@router.post("/findings/{finding_id}/order", response_model=FindingOut, summary="Order a correction")
def order(finding_id: Id, body: OrderIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """A corrective order (시정명령) with a deadline."""
    conn = tx.connection()
    _on_finding(user, conn, finding_id, Action.plan_inspections)
    return ins.order(conn, finding_id, order_text=body.order_text, deadline=body.deadline,
                     actor_user_id=user.user_id)


@router.post("/findings/{finding_id}/answer", response_model=FindingOut, summary="Answer an order (centre staff)")
def answer(finding_id: Id, body: AnswerIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """What was corrected, with the evidence."""
    conn = tx.connection()
    _on_finding(user, conn, finding_id, Action.answer_findings)
    return ins.answer(conn, finding_id, answer_text=body.answer_text, actor_user_id=user.user_id)


@router.post("/findings/{finding_id}/close", response_model=FindingOut, summary="Close a finding")
def close_finding(finding_id: Id, body: CloseIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """After an accepted answer, or an open finding corrected on the spot."""
    conn = tx.connection()
    _on_finding(user, conn, finding_id, Action.plan_inspections)
    return ins.close_finding(conn, finding_id, note=body.note, actor_user_id=user.user_id)


@router.post("/findings/{finding_id}/reopen", response_model=FindingOut, summary="Refuse an answer")
def reopen(finding_id: Id, body: ReopenIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """The order stands again with a new deadline."""
    conn = tx.connection()
    _on_finding(user, conn, finding_id, Action.plan_inspections)
    return ins.reopen(conn, finding_id, reason=body.reason, deadline=body.deadline, actor_user_id=user.user_id)


@router.post("/inspections/overdue", response_model=OverdueOut, summary="Mark the 구's orders past their deadline")
def overdue(district: District, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Ordered findings whose deadline's day is over become overdue (the daily job
    ``dolbom inspections overdue`` does it for every 구)."""
    authorize(user, Action.plan_inspections, district_code=district)
    return {"overdue": ins.mark_overdue(tx.connection(), district_code=district, actor_user_id=user.user_id)}
