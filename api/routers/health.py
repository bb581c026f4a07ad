"""Liveness with a database round trip."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EngineDep
from geo.db import check_database
from geo.models import Facility

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health")
def health(engine: EngineDep) -> JSONResponse:
    """200 with versions and facility count when PostGIS answers, 503 otherwise."""
    try:
        versions = check_database(engine)
        with engine.connect() as conn:
            facilities = conn.execute(select(func.count()).select_from(Facility)).scalar_one()
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": "unreachable", "detail": str(exc.__class__.__name__)},
                            status_code=503)
    return JSONResponse({"status": "ok", "database": versions, "facilities": facilities})
