"""Liveness with a database round trip (503 problem+json with Retry-After while the database is down).

With read replicas: each server's state (up, WAL position, replay lag in seconds and bytes, whether it serves
reads), ``degraded`` while one of them is down but reads still work, and 503 only when no server answers.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from api.deps import EngineDep
from geo.db import check_database
from geo.models.facilities import Facility
from geo.ops.replicas import ReadRouter
from geo.settings import development_warnings

router = APIRouter(tags=["health"])


def _probe(engine: Engine) -> tuple[dict[str, str], int]:
    versions = check_database(engine)
    with engine.connect() as conn:
        facilities = conn.execute(select(func.count()).select_from(Facility)).scalar_one()
    return versions, facilities


def _environment(request: Request) -> dict[str, Any]:
    """``environment`` (DOLBOM_ENV) and, in development, ``warnings``: what only a laptop may run with."""
    settings = request.app.state.settings
    return {"environment": settings.server.environment, "warnings": development_warnings(settings)}


@router.get("/health", summary="Service and database health",
            responses={503: {"description": "No database server answers (problem+json, Retry-After)"}})
def health(request: Request, engine: EngineDep) -> dict[str, Any]:
    """200 with versions, facility count and ``worker_pid`` (the API process that answered: with
    ``dolbom run --workers N`` several share the port) when PostGIS answers; with replicas also every server's
    state."""
    read_router: ReadRouter | None = request.app.state.read_router
    if read_router is None:
        versions, facilities = _probe(engine)
        return {"status": "ok", "database": versions, "facilities": facilities, "worker_pid": os.getpid(),
                **_environment(request)}
    report = read_router.report()
    # The server that serves reads first (the one the report names: no second choice, which would also move the
    # replicas' round robin on), then the others: health answers while any of them does.
    first = report["reads_from"] or "primary"
    engines: dict[str, Engine] = {"primary": engine, **request.app.state.replica_engines}
    order = [first, *(name for name in engines if name != first)]
    error: DBAPIError | None = None
    for name in order:
        try:
            versions, facilities = _probe(engines[name])
        except DBAPIError as exc:
            error = error or exc
            continue
        degraded = not all(server["up"] for server in report["servers"])
        return {"status": "degraded" if degraded else "ok", "database": versions, "facilities": facilities,
                "answered_by": name, "worker_pid": os.getpid(), **report, **_environment(request)}
    assert error is not None
    raise error
