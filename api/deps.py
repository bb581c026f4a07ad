"""Dependency aliases.

- ``ReadConnDep``: a psycopg async connection from the read pool (autocommit, one statement per read); the search
  endpoints run on it without leaving the event loop, and it returns to the pool as soon as the handler returns.
- ``SessionDep``: a SQLAlchemy session for sync handlers that only read (closed, never committed).
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
from sqlalchemy.orm import Session

from geo.settings import Settings


def get_engine(request: Request) -> Engine:
    """The engine created by the app's lifespan."""
    return request.app.state.engine  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (``async``: FastAPI runs a sync dependency in its thread pool, a
    hand-off per request that the read path measured at ~15% of the API's time)."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_read_connection(request: Request) -> AsyncIterator[AsyncConnection[Any]]:
    """A read connection from the app's async pool (returned when the handler returns: ``ReadConnDep``)."""
    pool: AsyncConnectionPool = request.app.state.read_pool
    async with pool.connection() as conn:
        yield conn


def get_session(request: Request) -> Iterator[Session]:
    """A read-only session per request, closed afterwards (its transaction is rolled back)."""
    with Session(get_engine(request)) as session:
        yield session


def get_tx_session(request: Request) -> Iterator[Session]:
    """A session per writing request: committed when the handler succeeds, rolled back when it raises."""
    with Session(get_engine(request), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


EngineDep = Annotated[Engine, Depends(get_engine)]
# scope="function": the connection goes back to the pool when the handler returns, not after the response has
# been sent; under load the pool's connections then serve queries instead of waiting on slow clients.
ReadConnDep = Annotated[AsyncConnection[Any], Depends(get_read_connection, scope="function")]
SessionDep = Annotated[Session, Depends(get_session)]
# scope="function": commit before the response is sent, so a failed commit is an error response, not a lost write.
TxSessionDep = Annotated[Session, Depends(get_tx_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
