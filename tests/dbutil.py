"""Test helpers shared by fixtures."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import (
    WriteSession,
    get_log_publisher,
    get_read_connection,
    get_read_session,
    get_session,
    get_write_tx,
)
from geo.admission import tlog_store
from geo.db import driver_connection
from geo.settings import Settings


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back on exit, whatever the test did."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


class _AsyncCursor:
    """The async cursor calls the read path makes, answered by a sync psycopg cursor."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    async def __aenter__(self) -> _AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cursor.close()

    async def execute(self, query: Any, params: Any = None) -> _AsyncCursor:
        self.cursor.execute(query, params)
        return self

    async def fetchone(self) -> Any:
        return self.cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())


class SyncAsAsyncConnection:
    """A sync psycopg connection seen through the async connection interface of the read path, so that the API
    reads inside a test's rolled-back transaction."""

    def __init__(self, connection: Connection) -> None:
        self.driver = driver_connection(connection)

    def cursor(self, **kwargs: Any) -> _AsyncCursor:
        return _AsyncCursor(self.driver.cursor(**kwargs))

    async def execute(self, query: Any, params: Any = None) -> _AsyncCursor:
        """``AsyncConnection.execute``: a new cursor with the statement executed."""
        return await _AsyncCursor(self.driver.cursor()).execute(query, params)


def _publish_log(connection: Connection, settings: Settings) -> None:
    """The log's publication after a write, in a savepoint of the test's transaction."""
    with connection.begin_nested():
        tlog_store.publish(connection, settings, wait=False)


def client_on(settings: Settings, connection: Connection) -> TestClient:
    """A TestClient whose request sessions, write transactions and read connections run inside ``connection``'s
    (rolled-back) transaction, so that the API sees rows a test inserted without committing them."""
    app = create_app(settings)

    def fixture_session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session

    def fixture_write_tx() -> Iterator[Session]:
        # A savepoint: committed by the route (WriteRoute) or here, rolled back when the handler raises.
        with WriteSession(bind=connection, join_transaction_mode="create_savepoint") as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def fixture_read_connection() -> AsyncIterator[SyncAsAsyncConnection]:
        yield SyncAsAsyncConnection(connection)

    app.dependency_overrides[get_session] = fixture_session
    app.dependency_overrides[get_read_session] = fixture_session
    app.dependency_overrides[get_write_tx] = fixture_write_tx
    app.dependency_overrides[get_read_connection] = fixture_read_connection
    app.dependency_overrides[get_log_publisher] = lambda: functools.partial(_publish_log, connection, settings)
    # A loopback name: cookies are Secure on any other plain-HTTP host, and the client would not send them back.
    return TestClient(app, base_url="http://localhost")
