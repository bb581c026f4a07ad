"""``GET /facilities/{facility_id}``: one centre in full (the map's detail panel)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import ReadSessionDep, SettingsDep
from geo.search.detail import facility_detail
from geo.validation import MAX_ID

router = APIRouter(prefix="/facilities", tags=["facilities"])


@router.get("/{facility_id}", summary="One centre in full",
            responses={404: {"description": "No centre with this id (problem+json, RFC 9457)"}})
def get_facility(session: ReadSessionDep, settings: SettingsDep,
                 facility_id: Annotated[int, Path(ge=1, le=MAX_ID, description="facilities.id")]) -> dict[str, Any]:
    """Places and children by age class, staff, CCTV, bus, services, hours, the date of the vacancy figures, the
    evaluation grades (평가제) and the violations published today (위반사실 공표, docs/disclosure.md)."""
    return facility_detail(session.connection(), facility_id, now=settings.now())
