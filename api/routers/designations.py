"""The register of service designations (지정) kept by district officers and the city, and the languages the
centres' staff speak (declared by the centre's staff)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, IdempotencyKeyDep, ReadSessionDep, WriteRoute, WriteTx
from api.schemas.designations import (
    DesignationEndIn,
    DesignationIn,
    DesignationList,
    DesignationOut,
    LanguagesIn,
    LanguagesOut,
)
from api.security import authorize
from geo.auth.policy import Action
from geo.designations import register as reg
from geo.validation import MAX_OFFSET

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json, RFC 9457)"},
    403: {"description": "Not an officer of the centre's 구, the city, or the centre's staff (problem+json)"},
    404: {"description": "No such centre or designation (problem+json, RFC 9457)"},
    409: {"description": "Overlaps a designation of the same service, or already ends (problem+json)"},
}
router = APIRouter(tags=["designations"], responses=PROBLEMS, route_class=WriteRoute)
Code = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$", description="어린이집코드")]
DesignationId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
District = Annotated[str | None, Query(pattern=r"^\d{5}$", max_length=5, description="Only this 구 (5 digits)")]


@router.get("/designations", summary="The register of service designations", response_model=DesignationList)
def designations(session: ReadSessionDep, district: District = None,
                 centre: Annotated[str | None, Query(max_length=40, pattern=r"^[0-9A-Za-z_-]+$")] = None,
                 service: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
                 active: Annotated[bool, Query(description="Only those valid today")] = False) -> dict[str, Any]:
    """Public: which centre is designated for which service by whom, from when until when (ended ones too)."""
    return {"designations": reg.register(session.connection(), district_code=district, facility_code=centre,
                                         service=service, active_only=active)}


@router.get("/designations/conflicts", summary="Designations the official data does not list",
            response_model=DesignationList)
def conflicts(session: ReadSessionDep, district: District = None) -> dict[str, Any]:
    """Designations valid today whose service the centre's official data lacks (an import never removes a
    designation: an officer checks which is behind)."""
    return {"designations": reg.conflicts(session.connection(), district_code=district)}


@router.post("/centres/{code}/designations", status_code=201, response_model=DesignationOut,
             summary="Designate a service to a centre (the 구's officer or the city)")
def designate(code: Code, body: DesignationIn, user: CurrentUser, tx: WriteTx,
              _key: IdempotencyKeyDep) -> dict[str, Any]:
    """The search filter, the layers and the tiles reflect it at once when it holds today."""
    conn = tx.connection()
    facility_id, district = reg.facility_district(conn, code)
    authorize(user, Action.manage_designations, facility_id=facility_id, district_code=district)
    return reg.designate(conn, facility_code=code, service=body.service, authority=body.authority,
                         valid_from=body.valid_from, valid_to=body.valid_to, note=body.note,
                         actor_user_id=user.user_id)


@router.post("/designations/{designation_id}/end", response_model=DesignationOut,
             summary="End a designation on a day (the 구's officer or the city)")
def end_designation(designation_id: DesignationId, body: DesignationEndIn, user: CurrentUser,
                    tx: WriteTx) -> dict[str, Any]:
    """Kept in the register with who ended it; the centre's services follow on the day after ``valid_to``. A
    repeat is refused (409: it already ends then), so it needs no Idempotency-Key."""
    conn = tx.connection()
    current = reg.get(conn, designation_id)
    authorize(user, Action.manage_designations, district_code=current["district_code"])
    return reg.end(conn, designation_id, valid_to=body.valid_to, actor_user_id=user.user_id)


@router.put("/centres/{code}/languages", response_model=LanguagesOut,
            summary="Declare the languages the centre's staff speak (the centre's staff)")
def languages(code: Code, body: LanguagesIn, user: CurrentUser, tx: WriteTx) -> dict[str, Any]:
    """Searchable on the map and in the API (``language=zh``); shown in the family's language."""
    conn = tx.connection()
    facility_id, district = reg.facility_district(conn, code)
    authorize(user, Action.declare_languages, facility_id=facility_id, district_code=district)
    return {"centre": code, "languages": reg.set_languages(conn, facility_code=code, languages=body.languages,
                                                           actor_user_id=user.user_id)}
