"""The scaled-out configuration as `DOLBOM_PGBOUNCER=1 DOLBOM_PG_REPLICAS=1 dolbom run` builds it: the primary behind
PgBouncer in transaction mode and a streaming standby beside it. The read router's monitor of the primary polls
through PgBouncer many times a second, so it must not prepare its query (psycopg prepares after 5 executions, and
PgBouncer 1.18 then fails with "prepared statement _pg3_0 already exists", flagging a healthy primary as down)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import DolbomAPI, create_app
from api.read_routing import LSN_COOKIE, READ_SOURCE_HEADER
from geo.ops import provision
from geo.settings import Settings
from tests.replica_util import ReplicaCluster, add_staff_reporter, replica_cluster, wait_until
from tests.search_data import LAT, LON

CODE = "TEST-A"
SEARCH = f"/facilities/radius?lat={LAT}&lon={LON}&radius_m=200&age=0&min_free=2&f=json"
PORT, PGBOUNCER_PORT = 55470, 55480
TOKEN: dict[str, str] = {}


def _prepare(engine: Engine) -> None:
    TOKEN["staff"] = add_staff_reporter(engine, CODE)


@pytest.fixture(scope="module")
def scaled_out() -> Iterator[tuple[ReplicaCluster, Settings]]:
    with replica_cluster("scaleout", port=PORT, replicas=1, prepare=_prepare) as cluster:
        settings = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=cluster.local.local.data_dir, DOLBOM_PG_PORT=PORT,
                            DOLBOM_PG_DATABASE="dolbom", DOLBOM_PGBOUNCER=True,
                            DOLBOM_PGBOUNCER_PORT=PGBOUNCER_PORT, DOLBOM_REPLICA_MAX_LAG_S=60,
                            # One server connection: every client's statements meet on it, as they do on a
                            # busy pool (two workers' monitors preparing "_pg3_0" collide at once).
                            DOLBOM_PGBOUNCER_POOL_SIZE=1)
        provision.pgbouncer_up(settings)
        try:
            yield cluster, settings
        finally:
            provision.pgbouncer_down(settings)


def test_primary_behind_pgbouncer_and_a_local_standby(scaled_out: tuple[ReplicaCluster, Settings],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    cluster, settings = scaled_out
    caplog.set_level(logging.WARNING, logger="geo.ops.replicas")
    assert settings.through_pgbouncer
    assert settings.effective_replica_urls == cluster.replica_urls  # the local standby, found on disk
    # Two apps: two API workers, each with its own read router and monitors.
    # On a loopback name: the read-your-writes cookie is Secure on any other plain-HTTP host.
    with TestClient(create_app(settings), raise_server_exceptions=False, base_url="http://localhost") as client, \
            TestClient(create_app(settings), raise_server_exceptions=False,
                       base_url="http://localhost") as other_worker:
        wait_until(lambda: client.get("/health").json().get("reads_from") == "replica-1",
                   what="the replica to serve reads")
        time.sleep(1.5)  # ~15 polls of the primary through PgBouncer, well past psycopg's prepare threshold
        for app_client in (client, other_worker):
            assert isinstance(app_client.app, DolbomAPI) and app_client.app.dolbom is not None
            read_router = app_client.app.dolbom.read_router
            assert read_router is not None
            primary = read_router.primary.state
            assert primary.up, primary.error
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert {s["name"]: s["up"] for s in health["servers"]} == {"primary": True, "replica-1": True}

        found, source = _search(client)
        assert (found, source) == (False, "replica-1")  # no 0세 places reported yet
        body = {"enrolled_by_age": {"0": 1}, "free_by_age": {"0": 2}, "classes_by_age": {"0": 1}}
        for _ in range(7):  # the same write statements more than 5 times through PgBouncer
            written = client.post(f"/vacancy/centres/{CODE}/reports", json=body,
                                  headers={"Authorization": f"Bearer {TOKEN['staff']}"})
            assert written.status_code == 201, written.text
        assert LSN_COOKIE in written.cookies
        # The writer reads their write (the cookie the client keeps), wherever it is served from.
        assert _search(client)[0] is True
        wait_until(lambda: _search(TestClient(client.app, base_url="http://localhost"))[0],
                   what="the standby to replay the report")
        # No server was ever seen down (a monitor that failed a poll logs "<server> is down: ...").
        assert not [r.getMessage() for r in caplog.records if "is down" in r.getMessage()]
        # The writes went through PgBouncer: its statistics for the database count them.
        (stats,) = [row for row in _pgbouncer_console(settings, "SHOW STATS") if row["database"] == "dolbom"]
        assert stats["total_xact_count"] >= 7


def _pgbouncer_console(settings: Settings, command: str) -> list[dict[str, Any]]:
    conninfo = f"host={settings.pgbouncer_dir} port={settings.pgbouncer.port} user=postgres dbname=pgbouncer"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.execute(command)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _search(client: TestClient) -> tuple[bool, str]:
    response = client.get(SEARCH)
    assert response.status_code == 200, response.text
    return CODE in {item["code"] for item in response.json()["items"]}, response.headers[READ_SOURCE_HEADER]
