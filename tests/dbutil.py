"""Test helpers shared by fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import get_session
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


def client_on(settings: Settings, connection: Connection) -> TestClient:
    """A TestClient whose request sessions run inside ``connection``'s (rolled-back) transaction, so that the
    API sees rows a test inserted without committing them."""
    app = create_app(settings)

    def fixture_session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session

    app.dependency_overrides[get_session] = fixture_session
    return TestClient(app)
