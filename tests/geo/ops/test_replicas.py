"""Read routing over real streaming standbys (a primary and two ``pg_basebackup`` standbys in /tmp): reads on
replicas in turn, read-your-writes by WAL position, lag, a stopped standby, LSN notation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from geo.errors import InvalidQuery
from geo.ops import provision
from geo.ops.replicas import ReadRouter, format_lsn, parse_lsn, settled_lsn
from geo.settings import PROJECT_ROOT, Settings
from tests.replica_util import ReplicaCluster, replica_cluster, wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicaCluster]:
    with replica_cluster("geo", port=55410, replicas=2) as made:
        yield made


def _settings(cluster: ReplicaCluster, **extra: Any) -> Settings:
    return Settings(DATABASE_URL=cluster.primary_url, DOLBOM_REPLICA_URLS=",".join(cluster.replica_urls),
                    DOLBOM_DB_TIMEOUT_S=1, **extra)


async def _router(settings: Settings) -> ReadRouter:
    from geo.db import make_read_pool

    pool = make_read_pool(settings, max_size=4)
    await pool.open(wait=False)
    router = ReadRouter(settings, primary_pool=pool, replica_urls=settings.replicas.urls, replica_pool_size=4)
    await router.start()
    # Until every monitor has reported once, reads go to the primary.
    deadline = time.monotonic() + 10
    while not all(s.state.up for s in router.servers):
        assert time.monotonic() < deadline, router.report()
        await asyncio.sleep(0.05)
    return router


async def _close(router: ReadRouter) -> None:
    await router.close()
    await router.primary.pool.close()


async def _where(router: ReadRouter, min_lsn: int | None = None, *, code: str = "TEST-A") -> tuple[str, bool, str, bool]:
    """(server name, pg_is_in_recovery(), port of the server, whether the read sees the centre ``code``)."""
    async with router.connection(min_lsn) as (conn, name):
        cur = await conn.execute("SELECT pg_is_in_recovery(), current_setting('port'), "
                                 "EXISTS (SELECT 1 FROM facilities WHERE code = %s)", (code,))
        row = await cur.fetchone()
    assert row is not None
    return name, row[0], row[1], row[2]


def test_lsn_notation() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/3000060")) == "0/3000060"
    # A position just after a page header is the page boundary a replica reports after replaying up to it.
    assert settled_lsn(8192 * 5 + 24) == 8192 * 5
    assert settled_lsn(16 * 1024 * 1024 * 3 + 40) == 16 * 1024 * 1024 * 3
    assert settled_lsn(8192 * 5 + 48) == 8192 * 5 + 48
    for bad in ("", "0/", "xyz", "1/2/3", "0/123456789", "0/3000060; drop"):
        with pytest.raises(InvalidQuery):
            parse_lsn(bad)


def test_replica_urls_settings(tmp_path) -> None:
    listed = Settings(DATABASE_URL="postgresql://u@db/x", DOLBOM_REPLICA_URLS=" postgresql://u@r1/x,,postgres://u@r2/x ")
    assert listed.effective_replica_urls == ["postgresql+psycopg://u@r1/x", "postgresql+psycopg://u@r2/x"]
    # An external primary without DOLBOM_REPLICA_URLS: no replicas, whatever lies in the data directory.
    (tmp_path / "pg-replica-1").mkdir()
    (tmp_path / "pg-replica-1" / "PG_VERSION").write_text("15\n")
    assert Settings(DATABASE_URL="postgresql://u@db/x", DOLBOM_DATA_DIR=tmp_path).effective_replica_urls == []
    local = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=tmp_path, DOLBOM_PG_PORT=55490)
    assert local.effective_replica_urls == [f"postgresql+psycopg://postgres@/dolbom?host={tmp_path}/pg-replica-1"
                                            "&port=55491"]


def test_status_lists_standbys_with_lag(cluster: ReplicaCluster) -> None:
    status = provision.status(cluster.local)
    assert [r.index for r in status.replicas] == [1, 2]
    assert all(r.running for r in status.replicas)
    wait_until(lambda: all(r.replay_lag_bytes == 0 for r in provision.status(cluster.local).replicas),
               what="standbys to catch up")
    assert cluster.local.effective_replica_urls == cluster.replica_urls
    with cluster.replica(1) as standby:
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DOLBOM_DATA_DIR=str(cluster.local.local.data_dir), DOLBOM_PG_PORT=str(cluster.local.local.pg_port),
               PYTHONPATH=str(PROJECT_ROOT), COLUMNS="200")
    shown = subprocess.run([sys.executable, "-c", "from geo.cli import main; main()", "db", "status"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    for index in (1, 2):  # the CLI reports on stderr
        assert f"replica {index} {cluster.local.local_replica_dir(index)}: running=True replay_lag=0 bytes" \
            in shown.stderr, shown.stderr


def test_reads_go_to_the_replicas_in_turn(cluster: ReplicaCluster) -> None:
    async def scenario() -> list[tuple[str, bool, str, bool]]:
        router = await _router(_settings(cluster))
        try:
            return [await _where(router) for _ in range(4)]
        finally:
            await _close(router)

    seen = asyncio.run(scenario())
    ports = {cluster.local.local_replica_port(1), cluster.local.local_replica_port(2)}
    assert all(in_recovery for _, in_recovery, _, _ in seen), seen
    assert {int(port) for _, _, port, _ in seen} == ports
    assert {name for name, *_ in seen} == {"replica-1", "replica-2"}
    assert all(sees for *_, sees in seen)


def test_read_your_writes_and_lag(cluster: ReplicaCluster) -> None:
    """Replay paused on both standbys: a read carrying the write's position waits, then reads the primary; a
    read without it reads a replica that does not have the row; past the lag limit every read is the
    primary's; resumed, the position is served by a replica again."""
    settings = _settings(cluster, DOLBOM_READ_YOUR_WRITES_WAIT_MS=300, DOLBOM_REPLICA_MAX_LAG_S=3)

    async def scenario() -> dict[str, Any]:
        router = await _router(settings)
        out: dict[str, Any] = {}
        try:
            for index in (1, 2):
                with cluster.replica(index) as standby:
                    standby.execute("SELECT pg_wal_replay_pause()")
            with cluster.primary() as primary:
                primary.execute("UPDATE facilities SET code = 'TEST-RYW' WHERE code = 'TEST-B'")
            lsn = await router.primary_lsn()
            assert lsn is not None
            started = time.monotonic()
            out["with_lsn"] = await _where(router, lsn, code="TEST-RYW")
            out["waited_s"] = time.monotonic() - started
            out["without_lsn"] = await _where(router, code="TEST-RYW")
            await asyncio.sleep(3.3)  # past DOLBOM_REPLICA_MAX_LAG_S while the standbys stay paused
            out["lagging"] = await _where(router, code="TEST-RYW")
            out["report"] = router.report()
            for index in (1, 2):
                with cluster.replica(index) as standby:
                    standby.execute("SELECT pg_wal_replay_resume()")
            # Once the monitors see the standbys caught up (within the lag limit again), they serve the position.
            deadline = time.monotonic() + 10
            while not all(s["serves_reads"] for s in router.report()["servers"] if s["role"] == "replica"):
                assert time.monotonic() < deadline, router.report()
                await asyncio.sleep(0.05)
            out["resumed"] = await _where(router, lsn, code="TEST-RYW")
        finally:
            for index in (1, 2):
                with cluster.replica(index) as standby:
                    standby.execute("SELECT pg_wal_replay_resume()")
            with cluster.primary() as primary:
                primary.execute("UPDATE facilities SET code = 'TEST-B' WHERE code = 'TEST-RYW'")
            await _close(router)
        return out

    out = asyncio.run(scenario())
    assert out["with_lsn"][:2] == ("primary", False) and out["with_lsn"][3] is True
    assert out["waited_s"] >= 0.3  # it waited read_your_writes_wait_ms for a replica first
    assert out["without_lsn"][1] is True and out["without_lsn"][3] is False  # stale, from a replica
    assert out["lagging"][:2] == ("primary", False) and out["lagging"][3] is True
    replicas = [s for s in out["report"]["servers"] if s["role"] == "replica"]
    assert all(s["replay_lag_s"] > 3 and s["replay_lag_bytes"] > 0 and not s["serves_reads"] for s in replicas)
    assert out["report"]["reads_from"] == "primary"
    assert out["resumed"][1] is True and out["resumed"][3] is True


def test_a_stopped_standby_is_skipped_and_comes_back(cluster: ReplicaCluster) -> None:
    async def scenario() -> dict[str, Any]:
        router = await _router(_settings(cluster))
        out: dict[str, Any] = {}
        try:
            await asyncio.to_thread(provision.stop_replica, cluster.local, 1)
            # Straight after the stop, before any monitor poll: pooled connections to it are dead.
            out["stopped"] = [await _where(router) for _ in range(6)]
            await asyncio.to_thread(provision.stop_replica, cluster.local, 2)
            out["none"] = [await _where(router) for _ in range(3)]
            out["report"] = router.report()
            await asyncio.to_thread(provision.start_replica, cluster.local, 1)
            await asyncio.to_thread(provision.start_replica, cluster.local, 2)
            deadline = time.monotonic() + 15
            while not all(r.state.up for r in router.replicas):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            out["back"] = {(await _where(router))[0] for _ in range(4)}
        finally:
            await asyncio.to_thread(provision.start_replica, cluster.local, 1)
            await asyncio.to_thread(provision.start_replica, cluster.local, 2)
            await _close(router)
        return out

    out = asyncio.run(scenario())
    assert {name for name, *_ in out["stopped"]} == {"replica-2"}
    assert all(name == "primary" and not rec for name, rec, *_ in out["none"])
    assert {s["name"]: s["up"] for s in out["report"]["servers"]} == {
        "primary": True, "replica-1": False, "replica-2": False}
    assert out["back"] == {"replica-1", "replica-2"}
