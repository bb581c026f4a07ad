"""The API over a primary and a real streaming standby (in /tmp): searches read the replica, writes go to the
primary and carry their WAL position back (cookie and header) so that the writer reads their own write; a
stopped standby and a stopped primary, each coming back while the same app keeps serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.read_routing import LSN_COOKIE, LSN_HEADER, MIN_LSN_HEADER, READ_SOURCE_HEADER
from geo.ops import provision
from geo.settings import Settings
from tests.replica_util import ReplicaCluster, add_staff_reporter, replica_cluster, wait_until
from tests.search_data import LAT, LON

CODE = "TEST-A"  # centre A of the search fixture, 100 m from the search point
SEARCH = f"/facilities/radius?lat={LAT}&lon={LON}&radius_m=200&age=0&min_free=2&f=json"
TOKEN: dict[str, str] = {}


def _prepare(engine: Engine) -> None:
    TOKEN["staff"] = add_staff_reporter(engine, CODE)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicaCluster]:
    with replica_cluster("api", port=55420, replicas=1, prepare=_prepare) as made:
        yield made


@pytest.fixture()
def client(cluster: ReplicaCluster) -> Iterator[TestClient]:
    settings = Settings(DATABASE_URL=cluster.primary_url, DOLBOM_REPLICA_URLS=",".join(cluster.replica_urls),
                        DOLBOM_DB_TIMEOUT_S=1, DOLBOM_REPLICA_MAX_LAG_S=60, DOLBOM_READ_YOUR_WRITES_WAIT_MS=200)
    with TestClient(create_app(settings), raise_server_exceptions=False, base_url="http://localhost") as test_client:
        wait_until(lambda: test_client.get("/health").json().get("reads_from") == "replica-1",
                   what="the replica to serve reads")
        yield test_client


def _report(client: TestClient, free_0: int) -> Any:
    body = {"enrolled_by_age": {"0": 3 - free_0}, "free_by_age": {"0": free_0}, "classes_by_age": {"0": 1}}
    return client.post(f"/vacancy/centres/{CODE}/reports", json=body,
                       headers={"Authorization": f"Bearer {TOKEN['staff']}"})


def _search(client: TestClient, **headers: str) -> tuple[bool, str]:
    """(whether centre A shows with 2 free 0세 places, the server that answered)."""
    response = client.get(SEARCH, headers=headers)
    assert response.status_code == 200, response.text
    codes = {item["code"] for item in response.json()["items"]}
    return CODE in codes, response.headers[READ_SOURCE_HEADER]


def _paused(cluster: ReplicaCluster, paused: bool) -> None:
    with cluster.replica(1) as standby:
        standby.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def test_searches_read_the_replica_and_writes_carry_their_position(cluster: ReplicaCluster,
                                                                   client: TestClient) -> None:
    assert _search(client)[1] == "replica-1"
    assert client.get(f"/vacancy/centres/{CODE}").headers[READ_SOURCE_HEADER] == "replica-1"
    for path in ("/ogc/collections/facilities/items?limit=1", f"/waitlist/centres/{CODE}/queue?age_class=0",
                 f"/places/reverse?lat={LAT}&lon={LON}", "/places/search?q=가상해님", "/tiles/facilities/14/14149/6348.mvt"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers[READ_SOURCE_HEADER] == "replica-1", path
    written = _report(client, 2)
    assert written.status_code == 201, written.text
    position = written.headers[LSN_HEADER]
    cookie = written.headers["set-cookie"]
    assert cookie.startswith(f"{LSN_COOKIE}={position};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=300" in cookie
    with cluster.primary() as primary:
        assert primary.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        free = primary.execute("SELECT free_by_age->>'0' FROM facilities WHERE code = %s", (CODE,)).fetchone()
        assert primary.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn) >= 0",
                               (position,)).fetchone() == (True,)
    assert free == ("2",)
    # Reads carrying the position (cookie jar) still go to the replica once it has replayed it.
    assert _search(client) == (True, "replica-1")
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["reads_from"] == "replica-1"
    assert [(s["name"], s["up"]) for s in health["servers"]] == [("primary", True), ("replica-1", True)]
    replica = health["servers"][1]
    assert replica["serves_reads"] and replica["replay_lag_bytes"] is not None and replica["replay_lag_s"] < 60
    bad = client.get(SEARCH, headers={MIN_LSN_HEADER: "yesterday"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")


def test_a_parent_reads_their_own_write(cluster: ReplicaCluster, client: TestClient) -> None:
    assert _report(client, 0).status_code == 201
    wait_until(lambda: _search(client) == (False, "replica-1"), what="the replica to replay the first report")
    _paused(cluster, True)
    try:
        written = _report(client, 2)
        assert written.status_code == 201, written.text
        # The writer (cookie): the replica has not replayed the report, so the primary answers, with the write.
        assert _search(client) == (True, "primary")
        # An API client sending the position as a header: the same.
        client.cookies.clear()
        assert _search(client, **{MIN_LSN_HEADER: written.headers[LSN_HEADER]}) == (True, "primary")
        # Anyone else: the replica, which does not have it yet.
        assert _search(client) == (False, "replica-1")
    finally:
        _paused(cluster, False)
    assert _search(client, **{MIN_LSN_HEADER: written.headers[LSN_HEADER]}) == (True, "replica-1")


def test_a_stopped_replica_falls_back_to_the_primary_and_comes_back(cluster: ReplicaCluster,
                                                                    client: TestClient) -> None:
    provision.stop_replica(cluster.local, 1)
    try:
        # No error at any point: the first reads may still find pooled connections to the stopped standby.
        sources = [_search(client)[1] for _ in range(5)]
        assert sources == ["primary"] * 5
        assert client.get(f"/vacancy/centres/{CODE}").status_code == 200
        health = client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded" and body["reads_from"] == "primary"
        assert {s["name"]: s["up"] for s in body["servers"]} == {"primary": True, "replica-1": False}
    finally:
        provision.start_replica(cluster.local, 1)
    # Same app, no restart: reads return to the replica by themselves.
    wait_until(lambda: _search(client)[1] == "replica-1", what="reads to return to the replica")
    assert client.get("/health").json()["status"] == "ok"


def test_a_stopped_primary_answers_writes_503_and_reads_from_the_replica(cluster: ReplicaCluster,
                                                                        client: TestClient) -> None:
    assert _report(client, 1).status_code == 201
    provision.stop_primary(cluster.local)
    try:
        written = _report(client, 2)
        assert written.status_code == 503, written.text
        assert written.headers["content-type"].startswith("application/problem+json")
        assert written.headers["retry-after"].isdigit() and written.json()["status"] == 503
        # The writer's cookie names a position the replica has (the primary sent all its WAL before stopping).
        assert _search(client) == (False, "replica-1")
        for path in (f"/vacancy/centres/{CODE}", "/ogc/collections/facilities/items?limit=1",
                     f"/places/reverse?lat={LAT}&lon={LON}", "/tiles/facilities/14/14149/6348.mvt"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers[READ_SOURCE_HEADER] == "replica-1", path
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded" and health.json()["answered_by"] == "replica-1"
    finally:
        provision.start_primary(cluster.local)
    # Same app: writes work again once the primary is back (the pool replaces its dead connections).
    deadline = time.monotonic() + 20
    while (status := _report(client, 2).status_code) != 201:
        assert status == 503 and time.monotonic() < deadline
        time.sleep(0.2)
    wait_until(lambda: _search(client) == (True, "replica-1"), what="the replica to replay the new report")
