"""A throw-away primary with hot standbys in /tmp, for the replica tests: migrated, with the hand-written search
fixture committed before the standbys are copied from it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import Engine

from geo.db import as_libpq_url, make_engine
from geo.ops import provision
from geo.ops.migrate import upgrade
from geo.settings import Settings
from tests.search_data import insert_search_fixture


@dataclass
class ReplicaCluster:
    """The local settings of the cluster (``local``), the primary's URL and engine, the standbys' URLs."""

    local: Settings
    primary_url: str
    engine: Engine
    replica_urls: list[str]
    ids: dict[str, int]

    def replica(self, index: int, **kwargs: object) -> psycopg.Connection:
        """A direct autocommit connection to standby ``index`` (1-based)."""
        return psycopg.connect(as_libpq_url(self.replica_urls[index - 1]), autocommit=True, **kwargs)  # type: ignore[arg-type]

    def primary(self) -> psycopg.Connection:
        """A direct autocommit connection to the primary."""
        return psycopg.connect(as_libpq_url(self.primary_url), autocommit=True)


@contextmanager
def replica_cluster(name: str, *, port: int, replicas: int,
                    prepare: Callable[[Engine], None] | None = None) -> Iterator[ReplicaCluster]:
    """Primary on ``port`` and ``replicas`` standbys on the next ports, in ``/tmp/dolbom-replicas-<name>``;
    ``prepare`` runs on the migrated primary before the standbys are copied. Everything is stopped and removed
    afterwards."""
    data_dir = Path(f"/tmp/dolbom-replicas-{name}")
    local = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=data_dir, DOLBOM_PG_PORT=port,
                     DOLBOM_PG_DATABASE="dolbom")
    if data_dir.exists():  # left by an interrupted run: stop what it started before removing its files
        provision.pgbouncer_down(local)
        provision.down(local)
        shutil.rmtree(data_dir)
    primary_url = provision.up(local, replicas=0)
    engine = make_engine(primary_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            ids = insert_search_fixture(conn)
        if prepare is not None:
            prepare(engine)
        # `up` again, now with standbys: the primary is running, so this only copies and starts them.
        provision.up(local, replicas=replicas)
        yield ReplicaCluster(local, primary_url, engine,
                             [local.local_replica_url(i) for i in range(1, replicas + 1)], ids)
    finally:
        engine.dispose()
        provision.pgbouncer_down(local)
        provision.down(local)
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until(check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until it is true (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def add_staff_reporter(engine: Engine, code: str) -> str:
    """Give centre ``code`` of the search fixture 0세 classes and a staff account that reports its vacancies
    (the write of the API replica tests); returns the staff's bearer token."""
    from sqlalchemy import text

    from geo.auth.accounts import create_user, issue_token

    settings = Settings(DATABASE_URL=str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        conn.execute(text("UPDATE facilities SET classes_by_age = '{\"0\": 1}' WHERE code = :code"), {"code": code})
        staff = create_user(conn, email="staff@example.kr", password="correct horse battery",
                            role="centre_staff", facility_codes=[code])
        return issue_token(conn, settings, user_id=staff, kind="bearer").secret
