"""Writes through PgBouncer recover at once after PostgreSQL restarts.

PgBouncer waits ``server_login_retry`` (15 s by default) after a failed server login before it tries again, and
until then fails its clients: writes kept failing for 8 to 14 s after PostgreSQL was back (13.8 s here with the
default). The local ``pgbouncer.ini`` retries every half second (0.6 s here). The bound below is a liveness
condition far from both, not a timing measurement; the recovery time is printed (``-s``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from geo.db import as_libpq_url
from geo.ops import provision
from geo.settings import Settings
from tests.replica_util import ReplicaCluster, add_staff_reporter, replica_cluster

CODE = "TEST-A"
TOKEN: dict[str, str] = {}
RECOVERY_BOUND_S = 3.0
PORT = 55450


def _prepare(engine: Engine) -> None:
    TOKEN["staff"] = add_staff_reporter(engine, CODE)


def bouncer_settings(cluster: ReplicaCluster) -> Settings:
    """The cluster's settings with the app going through its PgBouncer."""
    return Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=cluster.local.local.data_dir, DOLBOM_PG_PORT=PORT,
                    DOLBOM_PG_DATABASE="dolbom", DOLBOM_PGBOUNCER=True, DOLBOM_PGBOUNCER_PORT=PORT + 9,
                    DOLBOM_PGBOUNCER_POOL_SIZE=4, DOLBOM_DB_TIMEOUT_S=1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicaCluster]:
    with replica_cluster("pgbouncer-recovery", port=PORT, replicas=0, prepare=_prepare) as made:
        settings = bouncer_settings(made)
        provision.pgbouncer_up(settings)
        try:
            yield made
        finally:
            provision.pgbouncer_down(settings)


def _report(client: TestClient) -> Any:
    body = {"enrolled_by_age": {"0": 1}, "free_by_age": {"0": 2}, "classes_by_age": {"0": 1}}
    return client.post(f"/vacancy/centres/{CODE}/reports", json=body,
                       headers={"Authorization": f"Bearer {TOKEN['staff']}"})


def write_recovery_s(cluster: ReplicaCluster, client: TestClient, *, limit_s: float = 60.0) -> float:
    """Restart PostgreSQL while a client waits in PgBouncer (whose server login then fails): the seconds from
    PostgreSQL's start until a write through the app succeeds (``limit_s`` at most)."""
    settings = bouncer_settings(cluster)
    assert _report(client).status_code == 201
    provision.stop_primary(cluster.local)
    try:
        with ThreadPoolExecutor(1) as pool:
            # A query arriving while PostgreSQL is down: PgBouncer tries to log in for it, and fails.
            waiting = pool.submit(_query_through, settings)
            time.sleep(1.0)
            provision.start_primary(cluster.local)
            started = time.monotonic()
            while _report(client).status_code != 201:
                if time.monotonic() - started > limit_s:
                    break
                time.sleep(0.05)
            recovery_s = time.monotonic() - started
            waiting.result()
    finally:
        provision.start_primary(cluster.local)
    return recovery_s


def _query_through(settings: Settings) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(
            as_libpq_url(settings.effective_database_url), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")


def test_writes_through_pgbouncer_recover_after_a_postgresql_restart(cluster: ReplicaCluster) -> None:
    settings = bouncer_settings(cluster)
    assert settings.effective_database_url == settings.local_pgbouncer_url()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        recovery_s = write_recovery_s(cluster, client, limit_s=30.0)
        print(f"writes through PgBouncer recovered {recovery_s:.2f} s after PostgreSQL was back")
        assert recovery_s <= RECOVERY_BOUND_S
        # And every write after that succeeds.
        assert [_report(client).status_code for _ in range(10)] == [201] * 10
