"""Test fixtures: a real PostGIS database (the project-local cluster unless DOLBOM_TEST_DATABASE_URL is set),
migrated once per session; a rolled-back transaction per test; paths to the real data in ../shared/data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from geo import provision
from geo.db import make_engine
from geo.migrate import upgrade
from geo.settings import PROJECT_ROOT, Settings

TEST_DATABASE = "dolbom_test"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the project (override with DOLBOM_SHARED_DATA)."""
    path = Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"real test data not found at {path}; set DOLBOM_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def test_database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    explicit = os.environ.get("DOLBOM_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    settings = Settings(DATABASE_URL=None)
    provision.up(settings)
    provision.drop_database(settings, TEST_DATABASE)
    provision.ensure_database(settings, TEST_DATABASE)
    yield settings.local_database_url(TEST_DATABASE)


@pytest.fixture(scope="session")
def settings(test_database_url: str) -> Settings:
    """Settings pointing at the test database."""
    return Settings(DATABASE_URL=test_database_url)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Engine on the migrated test database."""
    eng = make_engine(settings=settings)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture()
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@pytest.fixture()
def session(connection: Connection) -> Iterator[Session]:
    """ORM session joined to the rolled-back test transaction (commits become savepoints)."""
    with Session(bind=connection, join_transaction_mode="create_savepoint") as sess:
        yield sess
