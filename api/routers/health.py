"""Liveness with a database round trip (503 problem+json with Retry-After while the database is down)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from api.deps import EngineDep
from geo.db import check_database
from geo.models import Facility

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health",
            responses={503: {"description": "Database unavailable (problem+json, Retry-After)"}})
def health(engine: EngineDep) -> dict[str, Any]:
    """200 with versions, facility count and ``worker_pid`` (the API process that answered: with
    ``dolbom run --workers N`` several share the port) when PostGIS answers."""
    versions = check_database(engine)
    with engine.connect() as conn:
        facilities = conn.execute(select(func.count()).select_from(Facility)).scalar_one()
    return {"status": "ok", "database": versions, "facilities": facilities, "worker_pid": os.getpid()}
