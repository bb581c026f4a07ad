"""The parents' map page (Leaflet) served at ``/``; its assets under ``/static``; and the small JSON the page reads
besides the search: the signed-in parent's applications, a centre's public queue lengths, the staleness limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from api.deps import OptionalUser, ReadSessionDep, SessionDep, SettingsDep
from geo.admission.parent_view import map_applications, queue_lengths
from geo.admission.rules import childcare_year
from geo.auth.policy import Role

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["map"])
Code = Annotated[str, PathParam(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The interactive map."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/map/config", summary="What the map page needs to know of the server's settings")
def map_config(settings: SettingsDep) -> dict[str, Any]:
    """``vacancy_stale_days``: vacancy figures older than this are shown as stale (``DOLBOM_VACANCY_STALE_DAYS``)."""
    return {"vacancy_stale_days": settings.vacancy.stale_days}


@router.get("/map/applications", summary="The signed-in parent's applications for the map (rank and status)")
def my_applications(user: OptionalUser, session: SessionDep, response: Response) -> dict[str, Any]:
    """Per active entry: the centre (id, code, name, point), child, 반 age, status, rank and queue length. Without a
    session (or for another role) ``signed_in`` is false and the list is empty. Never cached: ranks are personal
    and change."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, Authorization"
    if user is None or user.role is not Role.parent:
        return {"signed_in": user is not None, "applications": []}
    return {"signed_in": True,
            "applications": map_applications(session.connection(), parent_user_id=user.user_id)}


@router.get("/map/centres/{code}/queues", summary="A centre's public queue length by 반 age",
            responses={404: {"description": "No centre with this code (problem+json, RFC 9457)"}})
def centre_queues(code: Code, session: ReadSessionDep) -> dict[str, Any]:
    """Public (the length of each age class's public queue): entries waiting or holding an offer this 보육연도."""
    year = childcare_year(datetime.now(UTC).date())
    return {"centre": code, "year": year, "by_age": queue_lengths(session.connection(), code, year=year)}
