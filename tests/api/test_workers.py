"""``dolbom serve --workers 2``: one port, two API processes, and state that is correct whichever answers.

A real server subprocess on a throw-away migrated database. Every response names the process that answered
(``X-Dolbom-Worker``, on through ``DOLBOM_WORKER_HEADER``); a request meant for a given worker goes over a
fresh keep-alive connection that the kernel handed to that worker (found by asking ``/health``), and each
assertion checks the header, so "answered by the other worker" is observed, never assumed.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import mapbox_vector_tile
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from benchmarks.harness import free_port, running_server
from geo.auth.accounts import create_user, issue_token
from geo.ops import provision
from geo.settings import Settings
from tests.conftest import TEST_DATABASE

WAIT_S = 30.0  # hang guard only, never a pass/fail timing
WORKER = "x-dolbom-worker"
MAX_FAILURES = 3
PASSWORD = "correct horse battery"
TILE_Z = 14
CENTRES = [
    # code, lon, lat: two centres near City Hall, in the same z14 tile
    ("W0000000001", 126.9784, 37.5667),
    ("W0000000002", 126.9790, 37.5670),
]


SERVE = [sys.executable, "-m", "geo.cli", "serve"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    pids: tuple[int, int]
    token: str
    engine: Engine


def answered_by(resp: httpx.Response) -> int:
    return int(resp.headers[WORKER])


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """XYZ tile containing lon/lat (slippy-map formula, independent of PostGIS)."""
    n = 2**z
    return (int((lon + 180.0) / 360.0 * n),
            int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n))


@pytest.fixture(scope="module")
def server(make_database) -> Iterator[Server]:
    engine = make_database("workers")
    with engine.begin() as conn:
        for code, lon, lat in CENTRES:
            conn.execute(text("""
                INSERT INTO facilities (code, name, facility_type, status, district_code, capacity, enrolled,
                    classes_by_age, free_by_age, geocode_quality, source, geom_4326)
                VALUES (:code, :name, 'national_public', 'active', '11140', 40, 0, :classes, :free, 'source', 'test',
                        ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
            """), {"code": code, "name": f"시험어린이집 {code[-1]}", "lon": lon, "lat": lat,
                   "classes": Jsonb({"0": 1, "1": 1, "2": 1, "3": 1}), "free": Jsonb({"0": 3, "total": 3})})
        admin = create_user(conn, email="admin@example.kr", password=PASSWORD, role="city_admin")
        token = issue_token(conn, Settings(), user_id=admin, kind="bearer").secret
        for who in ("parent", "verify", "locked"):
            create_user(conn, email=f"{who}@example.kr", password=PASSWORD, role="parent")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "DOLBOM_WORKER_HEADER": "true", "DOLBOM_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
           "DOLBOM_IDENTITY_PROVIDER": "local"}
    cmd = [*SERVE, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with running_server(cmd, base_url=url, ready_path="/health", env=env) as process:
        pids: set[int] = set()
        for _ in range(400):  # fresh connections until both workers have answered (the kernel picks)
            pids.add(answered_by(httpx.get(f"{url}/health", timeout=WAIT_S)))
            if len(pids) == 2:
                break
        assert len(pids) == 2, f"only {pids} answered on port {port}"
        first, second = sorted(pids)
        yield Server(url=url, process=process, pids=(first, second), token=token, engine=engine)


def pinned(server: Server, pid: int) -> httpx.Client:
    """An open client whose keep-alive connection is held by worker ``pid`` (the caller checks every answer)."""
    for _ in range(400):
        client = httpx.Client(base_url=server.url, timeout=WAIT_S)
        if answered_by(client.get("/health")) == pid:
            return client
        client.close()
    pytest.fail(f"worker {pid} never took a connection")


def parent_of(pid: int) -> int:
    """The parent process id of ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


@contextmanager
def on_worker(server: Server, pid: int) -> Iterator[httpx.Client]:
    """``pinned`` for one block, closed afterwards."""
    client = pinned(server, pid)
    try:
        yield client
    finally:
        client.close()


def test_both_worker_processes_of_the_one_server_answer(server: Server) -> None:
    for pid in server.pids:
        with on_worker(server, pid) as client:
            resp = client.get("/health")
            assert resp.status_code == 200 and answered_by(resp) == pid
            assert resp.json()["worker_pid"] == pid
        # A worker is a child of the `dolbom serve` process, not some other server on the machine.
        assert parent_of(pid) == server.process.pid


def _login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password})


def test_session_and_csrf_from_one_worker_are_honoured_and_revoked_on_the_other(server: Server) -> None:
    a, b = server.pids
    with on_worker(server, a) as client:
        resp = _login(client, "parent@example.kr")
        assert resp.status_code == 200 and answered_by(resp) == a
        cookie = {"Cookie": f"dolbom_session={resp.cookies['dolbom_session']}"}
        csrf = resp.json()["csrf_token"]
    with on_worker(server, b) as client:
        me = client.get("/auth/me", headers=cookie)
        assert me.status_code == 200 and answered_by(me) == b
        assert me.json()["email"] == "parent@example.kr"
        refused = client.post("/auth/tokens", headers=cookie, json={"label": "no csrf"})
        assert refused.status_code == 403 and answered_by(refused) == b
        created = client.post("/auth/tokens", headers={**cookie, "X-CSRF-Token": csrf}, json={"label": "cli"})
        assert created.status_code == 201 and answered_by(created) == b
        bearer = {"Authorization": f"Bearer {created.json()['access_token']}"}
        out = client.post("/auth/logout", headers={**cookie, "X-CSRF-Token": csrf})
        assert out.status_code == 204 and answered_by(out) == b
    with on_worker(server, a) as client:
        gone = client.get("/auth/me", headers=cookie)
        assert gone.status_code == 401 and answered_by(gone) == a
        token_me = client.get("/auth/me", headers=bearer)  # the token made on the other worker
        assert token_me.status_code == 200 and answered_by(token_me) == a


def test_identity_verification_started_on_one_worker_completes_on_the_other(server: Server) -> None:
    a, b = server.pids
    with on_worker(server, a) as client:
        resp = _login(client, "verify@example.kr")
        session, csrf = resp.cookies["dolbom_session"], resp.json()["csrf_token"]
        start = client.post("/auth/identity/start", headers={"Cookie": f"dolbom_session={session}",
                                                             "X-CSRF-Token": csrf})
        assert start.status_code == 200 and answered_by(start) == a
        state, idv = start.json()["state"], start.cookies["dolbom_idv"]
    with on_worker(server, b) as client:
        body = {"state": state, "name": "김하나", "birth_date": "1990-05-01", "phone": "010-1234-5678"}
        headers = {"Cookie": f"dolbom_session={session}; dolbom_idv={idv}", "X-CSRF-Token": csrf}
        wrong = client.post("/auth/identity/local", headers=headers, json={**body, "state": "not-the-state"})
        assert wrong.status_code == 401 and answered_by(wrong) == b
        done = client.post("/auth/identity/local", headers=headers, json=body)
        assert done.status_code == 200 and answered_by(done) == b
        assert done.json()["verified_name"] == "김하나"


def test_failed_logins_on_both_workers_count_towards_one_lockout(server: Server) -> None:
    a, b = server.pids
    for i in range(MAX_FAILURES):
        pid = (a, b)[i % 2]
        with on_worker(server, pid) as client:
            failed = _login(client, "locked@example.kr", "wrong password")
            assert failed.status_code == 401 and answered_by(failed) == pid
    for pid in (a, b):  # the right password no longer helps, on either worker
        with on_worker(server, pid) as client:
            locked = _login(client, "locked@example.kr")
            assert locked.status_code == 429 and answered_by(locked) == pid


class Stream:
    """An SSE subscription over ``client``'s connection, read in a thread; ``ready`` once subscribed."""

    def __init__(self, client: httpx.Client) -> None:
        self.events: queue.Queue[dict] = queue.Queue()
        self.ready = threading.Event()
        self.pid: int | None = None
        self.thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT_S), "stream did not open"

    def _run(self, client: httpx.Client) -> None:
        with client.stream("GET", "/vacancy/stream") as resp:
            self.pid = answered_by(resp)
            event: dict = {}
            for line in resp.iter_lines():
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and event:
                    self.events.put(event)
                    return


def _report(server: Server, pid: int, code: str, free_0: int) -> dict:
    with on_worker(server, pid) as client:
        resp = client.post(f"/vacancy/centres/{code}/reports", headers={"Authorization": f"Bearer {server.token}"},
                           json={"enrolled_by_age": {"0": 3 - free_0}, "free_by_age": {"0": free_0}})
        assert resp.status_code == 201 and answered_by(resp) == pid, resp.text
        return resp.json()


def test_vacancy_report_through_one_worker_reaches_streams_on_both(server: Server) -> None:
    a, b = server.pids
    clients = [pinned(server, pid) for pid in (a, b)]
    try:
        streams = [Stream(client) for client in clients]
        assert [s.pid for s in streams] == [a, b]
        event = _report(server, a, CENTRES[0][0], 1)
        for stream in streams:
            got = stream.events.get(timeout=WAIT_S)
            assert got["id"] == event["seq"]
            assert got["data"]["code"] == CENTRES[0][0] and got["data"]["free_by_age"]["0"] == 1
    finally:
        for client in clients:
            client.close()


def _tile(server: Server, pid: int, path: str, etag: str | None = None) -> httpx.Response:
    with on_worker(server, pid) as client:
        resp = client.get(path, headers={"If-None-Match": etag} if etag else {})
        assert answered_by(resp) == pid
        return resp


def test_tile_cached_on_both_workers_changes_on_both_after_a_report(server: Server) -> None:
    a, b = server.pids
    code = CENTRES[1][0]
    x, y = tile_of(CENTRES[1][1], CENTRES[1][2], TILE_Z)
    path = f"/tiles/facilities/{TILE_Z}/{x}/{y}.mvt"

    def free_total_in(body: bytes) -> int:
        features = mapbox_vector_tile.decode(body)["facilities"]["features"]
        return next(f["properties"]["free_total"] for f in features if f["properties"]["name"].endswith(code[-1]))

    # Twice on each worker: the second answer comes from that worker's tile cache (same version, same ETag).
    before = [_tile(server, pid, path) for pid in (a, b, a, b)]
    assert all(r.status_code == 200 for r in before)
    etag = before[0].headers["etag"]
    assert {r.headers["etag"] for r in before} == {etag}
    assert {r.content for r in before} == {before[0].content}
    assert [_tile(server, pid, path, etag).status_code for pid in (a, b)] == [304, 304]
    old_free = free_total_in(before[0].content)

    _report(server, a, code, 2)  # written through worker a: the centre's free places change
    with server.engine.connect() as conn:
        new_free = int(conn.execute(text("SELECT (free_by_age->>'total')::int FROM facilities WHERE code = :c"),
                                    {"c": code}).scalar_one())
    assert new_free != old_free

    # Each worker hears of the change through its own LISTEN (tiles/feed.py): wait for that event, bounded.
    deadline = time.monotonic() + WAIT_S
    while True:
        after = [_tile(server, pid, path, etag) for pid in (b, a)]  # the old ETag is no longer current on either
        if [r.status_code for r in after] == [200, 200] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [r.status_code for r in after] == [200, 200]
    assert after[0].headers["etag"] == after[1].headers["etag"] != etag
    assert [free_total_in(r.content) for r in after] == [new_free, new_free]


def test_a_worker_that_dies_is_replaced_and_sessions_outlive_it(server: Server) -> None:
    a, b = server.pids
    with on_worker(server, a) as client:
        resp = _login(client, "parent@example.kr")
        assert resp.status_code == 200 and answered_by(resp) == a
        cookie = {"Cookie": f"dolbom_session={resp.cookies['dolbom_session']}"}
    assert parent_of(a) == server.process.pid  # a worker of the server this module started, nothing else
    os.kill(a, signal.SIGKILL)
    seen: set[int] = set()
    for _ in range(400):  # uvicorn's supervisor starts a new worker in its place (a hang guard, not a timing)
        try:
            seen.add(answered_by(httpx.get(f"{server.url}/health", timeout=WAIT_S)))
        except httpx.HTTPError:
            pass
        if seen - {a, b}:
            break
    (replacement,) = seen - {a, b}
    assert a not in seen
    with on_worker(server, replacement) as client:
        me = client.get("/auth/me", headers=cookie)
        assert me.status_code == 200 and answered_by(me) == replacement
    server.pids = (b, replacement)


def test_serve_refuses_a_database_without_the_schema() -> None:
    local = Settings(DATABASE_URL=None)
    database = f"{TEST_DATABASE}_workers_empty"
    provision.drop_database(local, database)
    provision.ensure_database(local, database)  # PostGIS, but never migrated
    try:
        done = subprocess.run([*SERVE, "--port", str(free_port())], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DATABASE_URL": local.local_database_url(database)})
    finally:
        provision.drop_database(local, database)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the database is at no schema") and "dolbom db migrate" in line


def test_serve_workers_must_be_positive() -> None:
    done = subprocess.run([*SERVE, "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error:") and "--workers" in line


def test_the_connection_budget_is_what_the_app_opens(settings: Settings, engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from api.app import DolbomAPI, create_app
    from geo.db import api_connections_per_worker

    with TestClient(create_app(settings)) as client:
        assert isinstance(client.app, DolbomAPI) and client.app.dolbom is not None
        state = client.app.dolbom
        pools = state.engine.pool.size() + state.engine.pool._max_overflow + state.read_pool.max_size
    assert pools + 1 == api_connections_per_worker(settings)  # + the vacancy LISTEN connection


def test_run_and_serve_warn_when_workers_could_exceed_max_connections(settings: Settings, engine: Engine,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from geo.cli.serve import check_connection_budget as _check_connection_budget
    from geo.db import api_connections_per_worker

    with engine.connect() as conn:
        allowed = int(conn.execute(text("SHOW max_connections")).scalar_one())
    fits = allowed // api_connections_per_worker(settings)
    if fits:
        _check_connection_budget(engine, settings, fits)
        assert "warning" not in capsys.readouterr().err
    _check_connection_budget(engine, settings, fits + 1)
    err = " ".join(capsys.readouterr().err.split())
    assert f"{fits + 1} workers may open up to {(fits + 1) * api_connections_per_worker(settings)}" in err
    assert f"the server allows {allowed}" in err
