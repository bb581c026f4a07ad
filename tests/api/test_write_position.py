"""Read-your-writes across a primary restart: every successful write carries the position a reader must wait
for (``Dolbom-LSN``), or the marker that sends the writer's next reads to the primary. Before the fix the first
writes after a restart came back 201 without either (the position was asked through pooled connections that
had died with the old server process) and the writer's next read could be stale."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import create_app
from api.read_routing import LSN_COOKIE, LSN_HEADER, READ_PRIMARY, READ_SOURCE_HEADER, ReadYourWrites
from api.state import AppState
from geo.ops import provision
from geo.ops.replicas import parse_lsn
from geo.settings import Settings
from tests.replica_util import ReplicaCluster, add_staff_reporter, replica_cluster, wait_until
from tests.search_data import LAT, LON

CODE = "TEST-A"
SEARCH = f"/facilities/radius?lat={LAT}&lon={LON}&radius_m=200&age=0&min_free=2&f=json"
TOKEN: dict[str, str] = {}
RESTARTS = 2
WRITES_PER_RESTART = 12


def _prepare(engine: Engine) -> None:
    TOKEN["staff"] = add_staff_reporter(engine, CODE)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicaCluster]:
    # A directory of its own (not the other replica tests'): two test runs never share a cluster.
    with replica_cluster("write-position", port=55440, replicas=1, prepare=_prepare) as made:
        yield made


@pytest.fixture()
def client(cluster: ReplicaCluster) -> Iterator[TestClient]:
    settings = Settings(DATABASE_URL=cluster.primary_url, DOLBOM_REPLICA_URLS=",".join(cluster.replica_urls),
                        DOLBOM_DB_TIMEOUT_S=1, DOLBOM_REPLICA_MAX_LAG_S=60, DOLBOM_READ_YOUR_WRITES_WAIT_MS=200)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        wait_until(lambda: test_client.get("/health").json().get("reads_from") == "replica-1",
                   what="the replica to serve reads")
        yield test_client


def _report(client: TestClient, free_0: int) -> Any:
    body = {"enrolled_by_age": {"0": 3 - free_0}, "free_by_age": {"0": free_0}, "classes_by_age": {"0": 1}}
    return client.post(f"/vacancy/centres/{CODE}/reports", json=body,
                       headers={"Authorization": f"Bearer {TOKEN['staff']}"})


def _position(response: Any) -> str | None:
    """The write's position or the read-from-primary marker, in the header and the cookie alike."""
    header = response.headers.get(LSN_HEADER)
    cookie = response.cookies.get(LSN_COOKIE)
    if header is None or cookie != header:
        return None
    if header != READ_PRIMARY:
        parse_lsn(header)
    return header


def test_every_write_after_a_primary_restart_carries_its_position(cluster: ReplicaCluster,
                                                                 client: TestClient) -> None:
    # Reads through the primary's pool first, so that it holds connections the restart will break.
    for _ in range(3):
        assert client.get(SEARCH, headers={"Dolbom-Min-LSN": "FFFFFFFF/0"}).status_code == 200
    assert _position(_report(client, 1)) is not None
    unstamped: list[int] = []
    markers = unavailable = 0
    for restart in range(RESTARTS):
        provision.stop_primary(cluster.local)
        provision.start_primary(cluster.local)
        written = 0
        for _attempt in range(200):
            response = _report(client, 2 - written % 2)
            if response.status_code == 503:  # the write's own pooled connection died with the old server
                unavailable += 1
                continue
            assert response.status_code == 201, response.text
            position = _position(response)
            if position is None:
                unstamped.append(restart)
            markers += position == READ_PRIMARY
            written += 1
            if written == WRITES_PER_RESTART:
                break
        assert written == WRITES_PER_RESTART, f"only {written} writes succeeded after restart {restart}"
    print(f"writes without a position: {len(unstamped)} of {RESTARTS * WRITES_PER_RESTART} "
          f"over {RESTARTS} primary restarts; with the read-from-primary marker: {markers}; 503 before the "
          f"first success: {unavailable}")
    assert unstamped == []


def test_the_writer_reads_its_write_with_the_marker(cluster: ReplicaCluster, client: TestClient) -> None:
    """A write whose position could not be read sends the writer's reads to the primary (header or cookie)."""
    assert _report(client, 0).status_code == 201
    wait_until(lambda: CODE not in _codes(client.get(SEARCH)), what="the replica to replay the first report")
    with cluster.replica(1) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
    try:
        assert _report(client, 2).status_code == 201
        client.cookies.clear()
        # Anyone else: the replica, without the write; the marker: the primary, with it, and without waiting.
        assert client.get(SEARCH).headers[READ_SOURCE_HEADER] == "replica-1"
        marked = client.get(SEARCH, headers={"Dolbom-Min-LSN": READ_PRIMARY})
        assert marked.headers[READ_SOURCE_HEADER] == "primary" and CODE in _codes(marked)
        client.cookies.set(LSN_COOKIE, READ_PRIMARY)
        by_cookie = client.get(SEARCH)
        assert by_cookie.headers[READ_SOURCE_HEADER] == "primary" and CODE in _codes(by_cookie)
    finally:
        with cluster.replica(1) as standby:
            standby.execute("SELECT pg_wal_replay_resume()")
        client.cookies.clear()


class _SilentPrimary:
    """A read router whose primary does not give its position."""

    async def primary_lsn(self) -> int | None:
        return None


def test_a_write_without_a_position_gets_the_primary_marker() -> None:
    async def created(request: Request) -> Response:
        return Response(status_code=201)

    app = Starlette(routes=[Route("/things", created, methods=["POST"])],
                    middleware=[Middleware(ReadYourWrites)])
    # The middleware reads only the read router of the app's state (``state_of``).
    unused = cast(Any, None)
    app.dolbom = AppState(  # type: ignore[attr-defined]
        settings=unused, engine=unused, read_pool=unused, tile_cache=unused,
        vacancy_hub=unused, read_router=cast(Any, _SilentPrimary()))
    with TestClient(app) as bare:
        response = bare.post("/things")
    assert response.status_code == 201
    assert response.headers[LSN_HEADER] == READ_PRIMARY and response.cookies.get(LSN_COOKIE) == READ_PRIMARY


def _codes(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["code"] for item in response.json()["items"]}
