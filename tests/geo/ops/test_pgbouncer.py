"""PgBouncer in transaction mode in front of a cluster of its own (/tmp/dolbom-pgb-*), started and stopped by the
project's commands (``dolbom db up --pgbouncer`` / ``dolbom db down``), with 2 server connections so that they
are really shared: prepared statements collide there unless disabled (the positive control); the API's searches
and writes repeated on every client connection; a vacancy report written through PgBouncer reaches a stream
whose hub LISTENs on the direct URL; a CLI import with DOLBOM_PGBOUNCER=1 and the import's transaction-level
advisory lock across pooled connections."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text

from benchmarks.harness import free_port, running_server
from geo.auth.accounts import create_user, issue_token
from geo.db import as_libpq_url, connect_kwargs, make_direct_engine, make_engine, through_pgbouncer
from geo.errors import ImportRunning
from geo.ingest.run import import_run
from geo.ops import provision
from geo.settings import Settings
from tests.api.test_vacancy_stream import WAIT_S, Reader, insert_centres

DOLBOM = str(Path(sys.executable).with_name("dolbom"))
POOL_SIZE = 2  # server connections PgBouncer keeps per database: fewer than the API's client connections
ROUNDS = 15  # requests of each kind per worker thread: every client connection is used more than 10 times
CENTRES = [
    # code, district, lon, lat
    ("P0000000001", "11440", 126.910, 37.556),
    ("P0000000002", "11440", 126.915, 37.558),
    ("P0000000003", "11680", 127.050, 37.500),
]


def _free_tcp_port(first: int, last: int) -> int:
    """A port of this helper's range (55500-55549) that nothing listens on at 127.0.0.1."""
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


@dataclass
class Bouncer:
    settings: Settings
    env: dict[str, str]
    direct: Engine
    token: str

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Rows of a PgBouncer console command (SHOW POOLS, SHOW CLIENTS, ...)."""
        conninfo = (f"host={self.settings.pgbouncer_dir} port={self.settings.pgbouncer.port} user=postgres "
                    "dbname=pgbouncer")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            cur = conn.execute(command)
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def pool(self) -> dict[str, Any]:
        (row,) = [r for r in self.admin("SHOW POOLS") if r["database"] == self.settings.local.pg_database]
        return row


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    data_dir = Path(tempfile.mkdtemp(prefix="dolbom-pgb-test-", dir="/tmp"))
    overrides = {"DOLBOM_DATA_DIR": str(data_dir), "DOLBOM_PG_PORT": "55500",
                 "DOLBOM_PGBOUNCER_PORT": str(_free_tcp_port(55501, 55539)),
                 "DOLBOM_PGBOUNCER_POOL_SIZE": str(POOL_SIZE), "DOLBOM_PG_DATABASE": "dolbom",
                 "DOLBOM_PGBOUNCER_LISTEN_ADDR": "127.0.0.1"}
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DOLBOM_DIRECT_DATABASE_URL", "DOLBOM_PGBOUNCER")} | overrides
    settings = Settings(DATABASE_URL=None, DOLBOM_PGBOUNCER=True, **overrides)  # type: ignore[arg-type]
    try:
        # The project's command: cluster, migrations and PgBouncer (DOLBOM_PGBOUNCER itself is not set).
        done = subprocess.run([DOLBOM, "db", "up", "--pgbouncer"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "pgbouncer" in done.stderr and "DOLBOM_PGBOUNCER=1" in done.stderr
        assert provision.pgbouncer_status(settings).running
        direct = make_direct_engine(settings)
        with direct.begin() as conn:
            insert_centres(conn, "풀링어린이집", CENTRES)
            admin = create_user(conn, email="admin@example.kr", password="correct horse battery", role="city_admin")
            token = issue_token(conn, settings, user_id=admin, kind="bearer").secret
        yield Bouncer(settings=settings, env=env | {"DOLBOM_PGBOUNCER": "1"}, direct=direct, token=token)
        direct.dispose()
        down = subprocess.run([DOLBOM, "db", "down"], env=env, capture_output=True, text=True)
        assert down.returncode == 0, down.stderr
        assert "pgbouncer stopped" in down.stderr
        assert not provision.pgbouncer_status(settings).running and not provision.is_running(settings)
    finally:
        provision.pgbouncer_down(settings)
        provision.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def api(bouncer: Bouncer) -> Iterator[str]:
    """One uvicorn API process with DOLBOM_PGBOUNCER=1 and a read pool of 3; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1", "--port",
           str(port), "--log-level", "warning", "--no-access-log"]
    with running_server(cmd, base_url=base, ready_path="/health", env=bouncer.env | {"DOLBOM_READ_POOL_SIZE": "3"}):
        yield base


def test_settings_route_the_app_through_pgbouncer_and_the_rest_direct(bouncer: Bouncer) -> None:
    s = bouncer.settings
    assert s.effective_database_url == s.local_pgbouncer_url() != s.direct_database_url == s.local_database_url()
    assert through_pgbouncer(s.effective_database_url, s) and not through_pgbouncer(s.direct_database_url, s)
    assert connect_kwargs(s.effective_database_url, s) == {"prepare_threshold": None}
    assert connect_kwargs(s.direct_database_url, s) == {}
    # Another database through the same PgBouncer is pooled too; another server (a replica) is not.
    assert through_pgbouncer(s.local_pgbouncer_url("other"), s)
    assert not through_pgbouncer("postgresql://u@replica:5432/dolbom", s)
    # Its unix socket is reachable by the cluster owner only; TCP was asked for here (LISTEN_ADDR).
    assert s.pgbouncer_dir.stat().st_mode & 0o777 == 0o700
    with psycopg.connect(f"host=127.0.0.1 port={s.pgbouncer.port} user=postgres dbname=dolbom",
                         prepare_threshold=None) as tcp:
        assert tcp.execute("SELECT count(*) FROM facilities").fetchone() == (len(CENTRES),)
    # An external pooler: DATABASE_URL is PgBouncer, the direct URL must be given.
    external = Settings(DATABASE_URL="postgresql://u@pooler:6432/db", DOLBOM_PGBOUNCER=True,  # type: ignore[call-arg]
                        DOLBOM_DIRECT_DATABASE_URL="postgresql://u@server:5432/db")
    assert external.through_pgbouncer and external.direct_database_url.endswith("@server:5432/db")
    assert through_pgbouncer("postgresql+psycopg://u@pooler:6432/db", external)
    assert not through_pgbouncer(external.direct_database_url, external)
    with pytest.raises(ValueError, match="DOLBOM_DIRECT_DATABASE_URL"):
        Settings(DATABASE_URL="postgresql://u@pooler:6432/db", DOLBOM_PGBOUNCER=True)  # type: ignore[call-arg]
    # The command line says so in one line.
    env = {**os.environ, "DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "DOLBOM_PGBOUNCER": "1"}
    env.pop("DOLBOM_DIRECT_DATABASE_URL", None)
    done = subprocess.run([DOLBOM, "db", "status"], env=env, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: invalid settings")
    assert "DOLBOM_DIRECT_DATABASE_URL" in lines[0] and "Traceback" not in done.stderr


def test_prepared_statements_break_through_pgbouncer_unless_disabled(bouncer: Bouncer) -> None:
    url = as_libpq_url(bouncer.settings.effective_database_url)
    query = "SELECT code FROM facilities WHERE code = %s"
    # Positive control: prepared statements (psycopg's own, named _pg3_N per client connection) of two clients
    # meet on the same server connection and collide.
    with psycopg.connect(url, autocommit=True, prepare_threshold=1) as a, \
            psycopg.connect(url, autocommit=True, prepare_threshold=1) as b:
        with pytest.raises((psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)):
            for _ in range(ROUNDS):
                for conn in (a, b):
                    conn.execute(query, (CENTRES[0][0],)).fetchone()
    # The options geo.db gives connections through PgBouncer: the same alternation, many times, works.
    kwargs = connect_kwargs(bouncer.settings.effective_database_url, bouncer.settings)
    with psycopg.connect(url, autocommit=True, **kwargs) as a, psycopg.connect(url, autocommit=True, **kwargs) as b:
        for _ in range(ROUNDS):
            for conn in (a, b):
                assert conn.execute(query, (CENTRES[0][0],)).fetchone() == (CENTRES[0][0],)
    # And the SQLAlchemy engine made for the app's URL.
    engine = make_engine(settings=bouncer.settings)
    try:
        for _ in range(ROUNDS):
            with engine.connect() as c1, engine.connect() as c2:
                for conn in (c1, c2):
                    assert conn.execute(text("SELECT count(*) FROM facilities WHERE code = :c"),
                                        {"c": CENTRES[1][0]}).scalar_one() == 1
                    conn.commit()
    finally:
        engine.dispose()


def test_api_searches_and_writes_share_two_server_connections(bouncer: Bouncer, api: str) -> None:
    auth = {"Authorization": f"Bearer {bouncer.token}"}
    before = {r["database"]: int(r["total_xact_count"]) for r in bouncer.admin("SHOW STATS")}
    with httpx.Client(base_url=api, timeout=WAIT_S) as client:

        def worker(n: int) -> list[tuple[str, int, Any, Any]]:
            seen = []
            for i in range(ROUNDS):
                r = client.get("/facilities/radius", params={"lat": 37.557, "lon": 126.912, "radius_m": 2000,
                                                             "f": "json"})
                seen.append(("radius", r.status_code, r.json(), None))
                r = client.get("/facilities/nearest", params={"lat": 37.50, "lon": 127.05, "k": 1, "f": "json"})
                seen.append(("nearest", r.status_code, r.json(), None))
                code = CENTRES[n % len(CENTRES)][0]
                enrolled = (n + i) % 3
                r = client.post(f"/vacancy/centres/{code}/reports", headers=auth,
                                json={"enrolled_by_age": {"0": enrolled}, "free_by_age": {"0": 3 - enrolled}})
                seen.append(("report", r.status_code, r.json(), (code, 3 - enrolled)))
                r = client.get(f"/vacancy/centres/{code}")
                seen.append(("centre", r.status_code, r.json(), code))
                # The map layers' async engine.
                r = client.get("/ogc/collections/facilities/items", params={"bbox": "126.9,37.55,126.92,37.56"})
                seen.append(("features", r.status_code, r.json(), None))
            return seen

        with ThreadPoolExecutor(6) as pool:
            results = [item for seen in pool.map(worker, range(6)) for item in seen]
        clients = [c for c in bouncer.admin("SHOW CLIENTS") if c["database"] == bouncer.settings.local.pg_database]
        servers = [s for s in bouncer.admin("SHOW SERVERS") if s["database"] == bouncer.settings.local.pg_database]
    bad = [(kind, status, body) for kind, status, body, _ in results if status not in (200, 201)]
    assert not bad, bad[:3]
    for kind, _, body, expected in results:
        if kind == "radius":
            assert sorted(f["code"] for f in body["items"]) == [CENTRES[0][0], CENTRES[1][0]]
        elif kind == "nearest":
            assert [f["code"] for f in body["items"]] == [CENTRES[2][0]]
        elif kind == "features":
            assert sorted(f["properties"]["code"] for f in body["features"]) == [CENTRES[0][0], CENTRES[1][0]]
        elif kind == "report":
            assert (body["code"], body["free_by_age"]["0"]) == expected
        else:
            assert body["code"] == expected
    # Sharing: more client connections of the API than server connections behind them, every request a
    # transaction through PgBouncer.
    assert len(servers) <= POOL_SIZE < len(clients), (servers, clients)
    assert bouncer.pool()["pool_mode"] == "transaction"
    after = {r["database"]: int(r["total_xact_count"]) for r in bouncer.admin("SHOW STATS")}
    db = bouncer.settings.local.pg_database
    assert after[db] - before.get(db, 0) >= len(results)
    with bouncer.direct.connect() as conn:
        reports = conn.execute(text("SELECT count(*) FROM vacancy_events WHERE facility_code LIKE 'P%'")).scalar_one()
    assert reports >= 6 * ROUNDS


def test_vacancy_report_through_pgbouncer_reaches_the_stream(bouncer: Bouncer, api: str) -> None:
    reader = Reader(api, count=2, params={"district": "11440"})
    events = []
    for code, enrolled in ((CENTRES[2][0], 1), (CENTRES[0][0], 2), (CENTRES[1][0], 0)):
        r = httpx.post(f"{api}/vacancy/centres/{code}/reports", timeout=WAIT_S,
                       headers={"Authorization": f"Bearer {bouncer.token}"},
                       json={"enrolled_by_age": {"0": enrolled}, "free_by_age": {"0": 3 - enrolled}})
        assert r.status_code == 201, r.text
        events.append(r.json())
    got = reader.take(2)
    # The 11680 centre is filtered out; the two 11440 reports arrive in order, written through PgBouncer.
    assert [int(e["id"]) for e in got] == [events[1]["seq"], events[2]["seq"]]
    assert [e["data"]["code"] for e in got] == [CENTRES[0][0], CENTRES[1][0]]


def test_import_lock_across_pooled_connections_and_cli_restarting_pgbouncer(bouncer: Bouncer, shared_data: Path) -> None:
    osm = shared_data / "osm" / "seoul_dongjak_heukseok_cauH_overpass_20241118_norelations.osm"
    pooled = make_engine(settings=bouncer.settings)
    try:
        with pooled.connect() as holder:
            # An import in progress through PgBouncer holds the transaction-level lock ...
            with import_run(holder, kind="test_hold", source_name="held", sha256="0" * 64):
                with pytest.raises(ImportRunning):
                    with pooled.begin() as other, import_run(other, kind="test_other", source_name="other",
                                                             sha256="1" * 64):
                        pass
                # ... which the CLI (DOLBOM_PGBOUNCER=1: migrations and imports on the direct URL) sees too.
                blocked = subprocess.run([DOLBOM, "osm", "import", str(osm), "--network", "pgb"], env=bouncer.env,
                                         capture_output=True, text=True)
                assert blocked.returncode == 1 and "an import is running" in blocked.stderr, blocked.stderr
            holder.rollback()
        # Released at the end of its transaction, whichever server connection ran it.
        with pooled.begin() as conn, import_run(conn, kind="test_after", source_name="after", sha256="2" * 64):
            pass
    finally:
        pooled.dispose()
    # With PgBouncer stopped, a command run with DOLBOM_PGBOUNCER=1 starts it again.
    assert provision.pgbouncer_down(bouncer.settings) and not provision.pgbouncer_status(bouncer.settings).running
    done = subprocess.run([DOLBOM, "osm", "import", str(osm), "--network", "pgb"], env=bouncer.env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    status = subprocess.run([DOLBOM, "db", "status"], env=bouncer.env, capture_output=True, text=True)
    found = re.search(r"^pgbouncer \S+: running=(\w+) pid=\d+ used=(\w+)$", status.stderr, re.MULTILINE)
    assert found is not None and found.groups() == ("True", "True"), status.stderr
    with bouncer.direct.connect() as conn:
        kinds = conn.execute(text("SELECT kind FROM import_runs WHERE kind IN ('osm_network', 'test_hold', "
                                  "'test_other', 'test_after') ORDER BY id")).scalars().all()
    assert kinds == ["test_after", "osm_network"]


def test_bench_pgbouncer_smoke(bouncer: Bouncer) -> None:
    """``benchmarks.bench_pgbouncer`` on a few searches: the three ways return the same pages; numbers are there
    (no timing is asserted)."""
    from benchmarks import bench_pgbouncer

    try:
        bench_pgbouncer.fill(bouncer.direct, centres=3000)
        with bouncer.direct.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM facilities WHERE source = 'bench'")).scalar_one() == 3000
        result = bench_pgbouncer.latency(bouncer.settings, repeats=2, requests=12, warmup=12)
        assert result["same_results"] and result["mean_returned"] > 0
        assert all(r["median"] > 0 and r["rounds"] == 2 for r in result["ratios"].values())
        load = bench_pgbouncer.clients(bouncer.settings, repeats=2, clients=4, duration_s=0.3)
        assert load["server_connections"] == {"direct": 4, "pgbouncer": POOL_SIZE}
        assert all(s["min"] > 0 for s in load["searches_per_s"].values())
    finally:
        with bouncer.direct.begin() as conn:
            conn.execute(text("DELETE FROM facilities WHERE source = 'bench'"))
