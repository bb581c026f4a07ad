"""Backups and point-in-time recovery of the local cluster (pgBackRest): refusals without a cluster of our own, and
on a throw-away primary with a standby in /tmp, ``dolbom db restore --to`` a moment before a bad write brings
back every row acknowledged before it and nothing of the bad write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from geo.errors import ProvisioningError
from geo.ops import backup, provision
from geo.settings import Settings
from tests.replica_util import ReplicaCluster, replica_cluster, wait_until

DOLBOM = str(Path(sys.executable).with_name("dolbom"))
PORT = 55560  # and 55561 for the standby

# A facility of the search fixture copied under a new code (one acknowledged write).
COPY_FACILITY = """
    INSERT INTO facilities (code, name, facility_type, status, sigungu_name, district_code, address, capacity,
        enrolled, free_by_age, services, has_bus, cctv_count, geocode_quality, source, geom_4326)
    SELECT %(code)s, name, facility_type, status, sigungu_name, district_code, address, capacity, enrolled,
        free_by_age, services, has_bus, cctv_count, geocode_quality, source, geom_4326
    FROM facilities WHERE code = 'TEST-A'"""


def _dolbom(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOLBOM, "db", *args], env=env, capture_output=True, text=True, timeout=900)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOLBOM_") and k != "DATABASE_URL"}
    return {**env, **extra}


def test_backup_commands_refuse_a_database_of_another_server(tmp_path: Path) -> None:
    env = _clean_env(DATABASE_URL="postgresql://someone@db.example.kr/dolbom", DOLBOM_DATA_DIR=str(tmp_path))
    for args in (("backup",), ("backups",), ("restore", "--to", "2026-12-06T10:00:00+09:00", "--yes")):
        done = _dolbom(env, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert "project-local cluster only" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "pg").exists() and not (tmp_path / "backups").exists()


def test_restore_refuses_a_time_it_cannot_read(tmp_path: Path) -> None:
    done = _dolbom(_clean_env(DOLBOM_DATA_DIR=str(tmp_path)), "restore", "--to", "yesterday noon", "--yes")
    assert done.returncode == 1
    assert "'yesterday noon' is not an ISO 8601 time" in " ".join(done.stderr.split())
    assert not (tmp_path / "pg").exists()


def test_backup_config_refuses_paths_a_shell_would_split(tmp_path: Path) -> None:
    plain = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=tmp_path / "data", DOLBOM_PG_PORT=PORT)
    text = backup.config_text(plain)
    assert f"pg1-path={plain.pg_dir}\n" in text and f"repo1-path={tmp_path / 'data' / 'backups' / 'repo'}\n" in text
    assert "repo1-retention-full=2\n" in text
    assert "archive-push %p'" in backup.archive_options(plain)
    assert backup.archive_options(plain.updated(DOLBOM_PG_ARCHIVE=False)) == ""
    spaced = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=tmp_path / "my data", DOLBOM_PG_PORT=PORT)
    with pytest.raises(ProvisioningError, match="set DOLBOM_DATA_DIR to a plain path"):
        backup.archive_options(spaced)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicaCluster]:
    with replica_cluster("backup", port=PORT, replicas=1) as made:
        yield made


def _env(cluster: ReplicaCluster) -> dict[str, str]:
    return _clean_env(DOLBOM_DATA_DIR=str(cluster.local.local.data_dir), DOLBOM_PG_PORT=str(PORT),
                      DOLBOM_PG_DATABASE="dolbom")


def _state(conn: psycopg.Connection) -> tuple[set[str], set[int]]:
    codes = {r[0] for r in conn.execute("SELECT code FROM facilities").fetchall()}
    ledger = {r[0] for r in conn.execute("SELECT n FROM ledger").fetchall()}
    return codes, ledger


@pytest.mark.slow
def test_restore_to_a_moment_before_a_bad_write(cluster: ReplicaCluster) -> None:
    env = _env(cluster)
    local = cluster.local
    with cluster.primary() as conn:
        assert conn.execute("SELECT current_setting('archive_mode')").fetchone() == ("on",)
        conn.execute("CREATE TABLE ledger (n int PRIMARY KEY)")
        conn.execute("INSERT INTO ledger SELECT generate_series(1, 100)")

    done = _dolbom(env, "backup")  # full by default
    assert done.returncode == 0, done.stderr
    # Acknowledged after the full backup, each in its own transaction: only the archived WAL has them.
    with cluster.primary() as conn:
        for n in range(101, 131):
            conn.execute("INSERT INTO ledger VALUES (%s)", (n,))
            conn.execute(COPY_FACILITY, {"code": f"ACK-{n}"})
    done = _dolbom(env, "backup", "--type", "incr")
    assert done.returncode == 0, done.stderr
    with cluster.primary() as conn:
        for n in range(131, 161):
            conn.execute("INSERT INTO ledger VALUES (%s)", (n,))
            conn.execute(COPY_FACILITY, {"code": f"ACK-{n}"})
        conn.execute("UPDATE facilities SET name = '고친 이름' WHERE code = 'TEST-B'")
        acknowledged = _state(conn)
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        moment: datetime = row[0]
        # The bad write, acknowledged after the moment: most centres and half the ledger gone.
        time.sleep(0.01)
        deleted = conn.execute("DELETE FROM facilities WHERE code <> 'TEST-A'").rowcount
        conn.execute("DELETE FROM ledger WHERE n % 2 = 0")
        conn.execute("INSERT INTO ledger VALUES (-1)")
    assert deleted >= 60
    assert acknowledged[1] == set(range(1, 161)) and {f"ACK-{n}" for n in range(101, 161)} <= acknowledged[0]

    listed = _dolbom(env, "backups")
    assert listed.returncode == 0, listed.stderr
    kinds = [line.split("\t")[1] for line in listed.stdout.splitlines()]
    assert kinds == ["full", "incr"]

    # A moment before the first backup ended cannot be recovered: refused, the cluster untouched.
    early = _dolbom(env, "restore", "--to", (moment - timedelta(hours=1)).isoformat(), "--yes")
    assert early.returncode == 1 and "no backup ended before" in early.stderr
    with cluster.primary() as conn:
        assert conn.execute("SELECT count(*) FROM facilities").fetchone() == (1,)

    done = _dolbom(env, "restore", "--to", moment.astimezone(UTC).isoformat(), "--yes")
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stderr

    with cluster.primary() as conn:
        assert _state(conn) == acknowledged  # everything acknowledged up to the moment, nothing after it
        assert conn.execute("SELECT name FROM facilities WHERE code = 'TEST-B'").fetchone() == ("고친 이름",)
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)  # promoted: takes writes
        conn.execute("INSERT INTO ledger VALUES (1000)")
    # The standby was copied again from the restored primary and follows its new timeline.
    wait_until(lambda: _standby_has(cluster, 1000), timeout_s=60, what="the standby to replay a new write")
    with cluster.replica(1) as standby:
        assert _state(standby)[0] == acknowledged[0]
    # The replaced cluster is kept aside; backups after a restore work (and the old ones are still listed).
    assert list(local.local.data_dir.glob("pg.before-restore-*"))
    assert provision.status(local).running
    assert _dolbom(env, "backup", "--type", "diff").returncode == 0
    assert len(backup.backups(local)) == 3
    status = _dolbom(env, "status")
    assert f"backups {local.local.data_dir / 'backups'}: 3, newest " in status.stderr, status.stderr


def _standby_has(cluster: ReplicaCluster, n: int) -> bool:
    try:
        with cluster.replica(1) as standby:
            return standby.execute("SELECT EXISTS (SELECT 1 FROM ledger WHERE n = %s)", (n,)).fetchone() == (True,)
    except psycopg.OperationalError:  # still starting
        return False


@pytest.mark.slow
def test_a_failed_restore_leaves_the_cluster_as_it_was(cluster: ReplicaCluster,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    local = cluster.local
    if not backup.backups(local):
        backup.backup(local)
        time.sleep(1.1)  # pgBackRest's stop times are whole seconds
    with cluster.primary() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (n int)")
        conn.execute("INSERT INTO kept VALUES (1)")
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        conn.execute("INSERT INTO kept VALUES (2)")
    aside_before = set(local.local.data_dir.glob("pg.before-restore-*"))
    real = backup._pgbackrest

    def restore_fails(settings: Settings, *args: str, timeout_s: float | None = None) -> str:
        if args[-1] == "restore":
            raise backup.BackupError("pgbackrest restore failed: ERROR: [055]: simulated repository damage")
        return real(settings, *args, timeout_s=timeout_s)

    monkeypatch.setattr(backup, "_pgbackrest", restore_fails)
    with pytest.raises(backup.BackupError, match="failed, the cluster is as it was.*simulated repository damage"):
        backup.restore(local, to=row[0])
    with cluster.primary() as conn:  # the writes after the target are still there, the primary takes writes
        assert conn.execute("SELECT count(*) FROM kept WHERE n IN (1, 2)").fetchone() == (2,)
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        conn.execute("INSERT INTO kept VALUES (3)")
    assert set(local.local.data_dir.glob("pg.before-restore-*")) == aside_before
    wait_until(lambda: _standby_count(cluster) == 3, timeout_s=60, what="the standby to follow again")


def _standby_count(cluster: ReplicaCluster) -> int:
    try:
        with cluster.replica(1) as standby:
            row = standby.execute("SELECT count(*) FROM kept").fetchone()
    except psycopg.Error:  # still starting
        return -1
    return int(row[0]) if row else -1


@pytest.mark.slow
def test_a_cluster_started_without_archiving_is_told_to_restart() -> None:
    data_dir = Path("/tmp/dolbom-backup-noarchive")
    local = Settings(DATABASE_URL=None, DOLBOM_DATA_DIR=data_dir, DOLBOM_PG_PORT=PORT + 2, DOLBOM_PG_DATABASE="dolbom")
    off = local.updated(DOLBOM_PG_ARCHIVE=False)
    if data_dir.exists():
        provision.down(local)
        shutil.rmtree(data_dir)
    try:
        provision.up(off, replicas=0)
        assert not (data_dir / "backups").exists()
        with pytest.raises(backup.BackupError, match="DOLBOM_PG_ARCHIVE=0"):
            backup.backup(off)
        # Archiving switched on while the cluster runs (a checkout updated under a running cluster): `up` creates
        # the stanza without disturbing it, and a backup says to restart rather than failing inside pgBackRest.
        provision.up(local, replicas=0)
        with pytest.raises(backup.BackupError, match=r"started without WAL archiving; restart it"):
            backup.backup(local)
        provision.down(local)
        provision.up(local, replicas=0)
        assert backup.backup(local, kind="incr").kind == "full"  # no full yet: pgBackRest takes a full one
    finally:
        provision.down(local)
        shutil.rmtree(data_dir, ignore_errors=True)
