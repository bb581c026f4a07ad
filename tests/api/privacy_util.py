"""A TestClient whose read and write sessions both run inside the test's rolled-back transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.deps import get_session
from geo.settings import Settings
from tests.dbutil import client_on


def _savepoint_session(connection: Connection) -> Callable[[], Iterator[Session]]:
    """A request session inside the test's transaction, committed (as a savepoint) when the handler succeeds."""

    def session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    return session


def writing_client(settings: Settings, connection: Connection) -> TestClient:
    """``client_on`` whose sessions commit their savepoints, so that one request's writes are seen by the next
    (and the whole test still rolls back)."""
    client = client_on(settings, connection)
    for dependency in (get_session,):
        client.app.dependency_overrides[dependency] = _savepoint_session(connection)  # type: ignore[attr-defined]
    return client
