"""Backups and point-in-time recovery of the project-local cluster with pgBackRest (Debian's ``pgbackrest``).

* Archiving (``geo.ops.archiving``): provisioning starts the primary with ``archive_mode=on`` and
  ``archive_command`` = ``pgbackrest archive-push`` and creates the stanza, unless ``DOLBOM_PG_ARCHIVE=0``. A WAL
  segment is archived when full or after ``ARCHIVE_TIMEOUT_S`` at the latest.
* ``backup``: a full, differential or incremental backup (``pgbackrest backup --type=...``), then expiry of
  what ``DOLBOM_BACKUP_RETENTION_FULL`` no longer keeps.
* ``restore``: point-in-time recovery of the local cluster to a moment (``--type=time``): the WAL written so far
  is archived, the primary stopped, its directory set aside, the backup restored and the archived WAL replayed
  up to the moment, then the cluster is promoted (a new timeline) and its standbys are copied afresh.

Only the project-local cluster: with ``DATABASE_URL`` set every function here refuses (that server's backups
are its operator's tooling).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import psycopg

from geo.errors import ProvisioningError
from geo.ops import provision
from geo.ops.archiving import (
    ARCHIVE_TIMEOUT_S,
    BackupError,
    archive_options,
    backup_dir,
    config_path,
    config_text,
    ensure_stanza,
)
from geo.ops.archiving import run_pgbackrest as _pgbackrest
from geo.settings import Settings

__all__ = ["ARCHIVE_TIMEOUT_S", "BACKUP_KINDS", "BackupError", "BackupInfo", "RestoreResult", "archive_options",
           "backup", "backup_dir", "backups", "config_path", "config_text", "require_local", "restore"]

BackupKind = Literal["full", "diff", "incr"]
BACKUP_KINDS: tuple[BackupKind, ...] = ("full", "diff", "incr")


@dataclass(frozen=True)
class BackupInfo:
    """One backup in the repository, as ``pgbackrest info`` reports it."""

    label: str
    kind: str
    started_at: datetime
    stopped_at: datetime
    # Size of the cluster when backed up, and bytes this backup added to the repository (compressed).
    database_bytes: int
    stored_bytes: int
    wal_start: str
    wal_stop: str


@dataclass(frozen=True)
class RestoreResult:
    """What ``restore`` did: the moment recovered to, where the replaced cluster was set aside, how long it took."""

    target: datetime
    set_aside: Path
    seconds: float
    standbys: tuple[int, ...]
    warning: str | None

def require_local(settings: Settings, action: str) -> None:
    """Refuse ``action`` when ``DATABASE_URL`` points at a server of its own."""
    if settings.database.url:
        raise BackupError(f"DATABASE_URL is set: `dolbom db {action}` works on the project-local cluster only; "
                          "back up and restore that server with its own tooling (e.g. pgbackrest on its host)")

def _archiving_on(settings: Settings) -> bool:
    try:
        with psycopg.connect(provision._libpq_conninfo(settings, "postgres"), connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('archive_mode'), "
                               "current_setting('archive_command')").fetchone()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()
        raise BackupError(f"the local cluster in {settings.pg_dir} does not answer on port "
                          f"{settings.local.pg_port} ({first[0] if first else 'no answer'})") from None
    return bool(row) and row[0] == "on" and "archive-push" in str(row[1])  # type: ignore[index]


def _require_archiving(settings: Settings, action: str) -> None:
    require_local(settings, action)
    if not settings.local.archive:
        raise BackupError(f"DOLBOM_PG_ARCHIVE=0: the local cluster does not archive its WAL; unset it and "
                          f"restart the cluster (`dolbom db down`, `dolbom db up`) before `dolbom db {action}`")
    if not provision.is_running(settings):
        raise BackupError(f"the local cluster in {settings.pg_dir} is not running; `dolbom db up` first")
    if not _archiving_on(settings):
        raise BackupError("the local cluster was started without WAL archiving; restart it (`dolbom db down`, "
                          f"`dolbom db up`) before `dolbom db {action}`")


def backup(settings: Settings, *, kind: BackupKind = "full") -> BackupInfo:
    """Take a ``kind`` backup of the running local primary and expire what the retention no longer keeps;
    return the new backup. A ``diff`` or ``incr`` without an earlier full backup is taken as ``full``."""
    if kind not in BACKUP_KINDS:
        raise BackupError(f"unknown backup type {kind!r}; use one of {', '.join(BACKUP_KINDS)}")
    _require_archiving(settings, "backup")
    ensure_stanza(settings)
    before = {b.label for b in backups(settings)}
    _pgbackrest(settings, f"--type={kind}", "backup")
    made = [b for b in backups(settings) if b.label not in before]
    if not made:
        raise BackupError("pgbackrest backup finished but no new backup is listed")
    return made[-1]


def _when(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def backups(settings: Settings) -> list[BackupInfo]:
    """The backups in the local repository, oldest first (empty before the first backup)."""
    require_local(settings, "backups")
    if not config_path(settings).exists():
        return []
    info = json.loads(_pgbackrest(settings, "--output=json", "info") or "[]")
    found = []
    for stanza in info:
        for b in stanza.get("backup", []):
            found.append(BackupInfo(
                label=b["label"], kind=b["type"],
                started_at=_when(b["timestamp"]["start"]), stopped_at=_when(b["timestamp"]["stop"]),
                database_bytes=int(b["info"]["size"]), stored_bytes=int(b["info"]["repository"]["delta"]),
                wal_start=b["archive"]["start"], wal_stop=b["archive"]["stop"]))
    return sorted(found, key=lambda b: b.started_at)


def _target_text(target: datetime) -> str:
    """``target`` as PostgreSQL's ``recovery_target_time`` reads it (UTC, microseconds)."""
    return target.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _archive_written_wal(settings: Settings) -> str | None:
    """Archive the WAL written so far (``pgbackrest check`` switches the segment and waits for it to be
    archived), so a restore can replay up to now; a warning when that is impossible."""
    if not provision.is_running(settings):
        try:
            provision.start_primary(settings)
        except ProvisioningError as exc:
            return (f"the cluster did not start ({' '.join(exc.detail.split())[:300]}); WAL it wrote after the "
                    f"last archived segment is not replayed")
    try:
        _pgbackrest(settings, "check", timeout_s=300)
    except BackupError as exc:
        return f"the WAL written last may not be archived ({exc.detail[:300]})"
    return None


def restore(settings: Settings, *, to: datetime) -> RestoreResult:
    """Point-in-time recovery of the local cluster to ``to`` (timezone-aware): every transaction committed at
    or before ``to`` is back, everything committed after it is gone.

    The current cluster directory is kept beside the new one (``pg.before-restore-<UTC time>``) until the
    operator removes it; the local standbys are removed and copied again from the restored primary.

    Raises
    ------
    BackupError
        With ``DATABASE_URL`` set, a naive or future ``to``, no backup that ended before ``to`` (nothing
        changed), or a failed recovery (the cluster as it was is put back and started; the server log's last
        lines are in the message).
    """
    require_local(settings, "restore")
    if to.tzinfo is None:
        raise BackupError("the restore target needs a time zone (e.g. 2026-12-06T11:50:00+09:00)")
    if not settings.local.archive:
        raise BackupError("DOLBOM_PG_ARCHIVE=0: there is no archived WAL to recover a moment from")
    started = time.monotonic()
    now = datetime.now(tz=UTC)
    if to > now:
        raise BackupError(f"the restore target {to.isoformat()} is in the future (now {now.isoformat()})")
    # pgBackRest keeps whole seconds: a backup listed as stopped at 11:42:56 may have ended at 11:42:56.9.
    done = [b for b in backups(settings) if b.stopped_at < to.replace(microsecond=0)]
    if not done:
        first = backups(settings)
        raise BackupError(f"no backup ended before {to.isoformat()}; " + (
            f"the earliest ended at {first[0].stopped_at.isoformat()}" if first else
            "there is no backup yet (`dolbom db backup`)"))
    warning = _archive_written_wal(settings)

    standbys = tuple(settings.local_replica_indexes())
    for index in standbys:
        provision.stop_replica(settings, index)
    provision.stop_primary(settings)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    set_aside = settings.pg_dir.with_name(f"{settings.pg_dir.name}.before-restore-{stamp}")
    settings.pg_dir.rename(set_aside)
    provision._owned_dir(settings, settings.pg_dir)
    try:
        _pgbackrest(settings, "--type=time", f"--target={_target_text(to)}", "--target-action=promote",
                    "restore")
        provision.start_primary(settings)
        _wait_promoted(settings, timeout_s=1800)
        _forget_recovery_settings(settings)
    except (BackupError, ProvisioningError) as exc:
        # Nothing half-done: the cluster as it was before the restore is put back and started.
        provision.stop_primary(settings)
        log = settings.pg_dir / "server.log"
        tail = " ".join(log.read_text(errors="replace").splitlines()[-5:]) if log.exists() else ""
        shutil.rmtree(settings.pg_dir, ignore_errors=True)
        set_aside.rename(settings.pg_dir)
        provision.start_primary(settings)
        for index in standbys:
            provision.start_replica(settings, index)
        raise BackupError(f"restore to {to.isoformat()} failed, the cluster is as it was: "
                          f"{' '.join(exc.detail.split())[:800]} {tail[-800:]}") from exc
    for index in standbys:
        shutil.rmtree(settings.local_replica_dir(index), ignore_errors=True)
        provision.start_replica(settings, index)
    # Backups taken from here on are of the new timeline.
    return RestoreResult(target=to, set_aside=set_aside, seconds=time.monotonic() - started,
                         standbys=standbys, warning=warning)


def _wait_promoted(settings: Settings, *, timeout_s: float) -> None:
    """Wait until the restored primary has replayed to its target and left recovery."""
    deadline = time.monotonic() + timeout_s
    conninfo = provision._libpq_conninfo(settings, "postgres")
    while True:
        if not provision.is_running(settings):
            raise BackupError("PostgreSQL stopped during recovery")
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise BackupError(f"still recovering after {timeout_s:.0f} s")
        time.sleep(0.2)


def _forget_recovery_settings(settings: Settings) -> None:
    """Remove what ``pgbackrest restore`` wrote into ``postgresql.auto.conf`` (restore command, target): a standby
    copied from this cluster would otherwise stop at the old target and promote itself."""
    with psycopg.connect(provision._libpq_conninfo(settings, "postgres"), autocommit=True) as conn:
        for name in ("restore_command", "recovery_target_time", "recovery_target_action"):
            conn.execute(f"ALTER SYSTEM RESET {name}")  # a fixed name, not data
