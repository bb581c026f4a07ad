"""Liveness with a database round trip (503 problem+json with Retry-After while the database is down).

With read replicas: each server's state (up, WAL position, replay lag in seconds and bytes, whether it serves
reads), ``degraded`` while one of them is down but reads still work, and 503 only when no server answers.

The handler is async and probes on the read pools (the router's per server), never on the sync engine's pool
and never in a worker thread: a burst of writes that holds every thread and every write connection (issue #19)
does not take ``/health`` down with it.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from fastapi import APIRouter
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.deps import AppStateDep
from geo.settings import Settings, development_warnings

router = APIRouter(tags=["health"])

PROBE = "SELECT current_setting('server_version'), postgis_lib_version(), (SELECT count(*) FROM facilities)"


async def _probe(pool: AsyncConnectionPool) -> tuple[dict[str, str], int]:
    async with pool.connection() as conn:
        row = await (await conn.execute(PROBE)).fetchone()
    assert row is not None
    return {"postgresql": str(row[0]), "postgis": str(row[1])}, int(row[2])


def _environment(settings: Settings) -> dict[str, Any]:
    """``environment`` (DOLBOM_ENV) and, in development, ``warnings``: what only a laptop may run with."""
    return {"environment": settings.server.environment, "warnings": development_warnings(settings)}


@router.get("/health", summary="Service and database health",
            responses={503: {"description": "No database server answers (problem+json, Retry-After)"}})
async def health(state: AppStateDep) -> dict[str, Any]:
    """200 with versions, facility count and ``worker_pid`` (the API process that answered: with
    ``dolbom run --workers N`` several share the port) when PostGIS answers; with replicas also every server's
    state."""
    read_router = state.read_router
    if read_router is None:
        versions, facilities = await _probe(state.read_pool)
        return {"status": "ok", "database": versions, "facilities": facilities, "worker_pid": os.getpid(),
                **_environment(state.settings)}
    report = read_router.report()
    # The server that serves reads first (the one the report names: no second choice, which would also move the
    # replicas' round robin on), then the others: health answers while any of them does.
    first = report["reads_from"] or "primary"
    pools = {server.name: server.pool for server in read_router.servers}
    order = [first, *(name for name in pools if name != first)]
    error: Exception | None = None
    for name in order:
        try:
            versions, facilities = await _probe(pools[name])
        except (psycopg.OperationalError, PoolTimeout) as exc:
            error = error or exc
            continue
        degraded = not all(server["up"] for server in report["servers"])
        return {"status": "degraded" if degraded else "ok", "database": versions, "facilities": facilities,
                "answered_by": name, "worker_pid": os.getpid(), **report, **_environment(state.settings)}
    assert error is not None
    raise error
