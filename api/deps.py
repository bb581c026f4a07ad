"""Dependency aliases.

- ``ReadConnDep``: a psycopg async connection from the read pool (autocommit, one statement per read); the search
  endpoints run on it without leaving the event loop, and it returns to the pool as soon as the handler returns.
  With read replicas it comes from the read router (``geo.ops.replicas``): a replica that has replayed the request's
  write position (``api.read_routing``), else the primary.
- ``ReadSessionDep``: a SQLAlchemy session for sync handlers that only read public data, routed like
  ``ReadConnDep`` but without waiting (a replica that has not replayed the position yet: the primary).
- ``SessionDep``: a SQLAlchemy session for sync handlers on the primary (closed, never committed by the
  dependency; some handlers commit through their domain function).
- ``TxSessionDep``: a SQLAlchemy session for writes, committed when the handler returns and rolled back when it
  raises, so a request writes all or nothing.
- ``SettingsDep``, ``EngineDep``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.read_routing import min_lsn_of
from geo.db import session_scope
from geo.ops.replicas import ReadRouter
from geo.settings import Settings


def get_engine(request: Request) -> Engine:
    """The engine created by the app's lifespan."""
    return request.app.state.engine  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (``async``: FastAPI runs a sync dependency in its thread pool, a
    hand-off per request that the read path measured at ~15% of the API's time)."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    """A read connection from the app's async pool, or from the read router when there are replicas (returned
    when the handler returns: ``ReadConnDep``)."""
    router: ReadRouter | None = request.app.state.read_router
    if router is None:
        pool: AsyncConnectionPool = request.app.state.read_pool
        async with pool.connection() as conn:
            yield conn
        return
    async with router.connection(min_lsn_of(request)) as (conn, source):
        request.state.read_source = source
        yield conn


def get_read_session(request: Request) -> Iterator[Session]:
    """A read-only session on the server the read router chooses now (``ReadSessionDep``); a replica that fails
    its first round trip falls back to the primary."""
    router: ReadRouter | None = request.app.state.read_router
    if router is not None:
        server = router.choose(min_lsn_of(request))
        replica_engine: Engine | None = request.app.state.replica_engines.get(server.name)
        if replica_engine is not None:
            session = Session(replica_engine)
            try:
                session.connection()
            except DBAPIError:
                session.close()
                router.mark_down(server)
            else:
                request.state.read_source = server.name
                with session:
                    yield session
                return
        request.state.read_source = "primary"
    with Session(get_engine(request)) as primary_session:
        yield primary_session


def get_session(request: Request) -> Iterator[Session]:
    """A read-only session per request, closed afterwards (its transaction is rolled back)."""
    with Session(get_engine(request)) as session:
        yield session


def get_tx_session(request: Request) -> Iterator[Session]:
    """A session per writing request: committed when the handler succeeds, rolled back when it raises."""
    with session_scope(get_engine(request)) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
# scope="function": the connection goes back to the pool when the handler returns, not after the response has
# been sent; under load the pool's connections then serve queries instead of waiting on slow clients.
ReadConnDep = Annotated[AsyncConnection[Any], Depends(get_read_connection, scope="function")]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
# scope="function": commit before the response is sent, so a failed commit is an error response, not a lost write.
TxSessionDep = Annotated[Session, Depends(get_tx_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
