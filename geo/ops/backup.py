"""Backups and point-in-time recovery of the project-local cluster with pgBackRest (Debian's ``pgbackrest``).

The repository lives in ``Settings.backup_dir`` (``DOLBOM_DATA_DIR/backups``): ``pgbackrest.conf``, ``repo/``
(backups and archived WAL, zstd-compressed), ``log/`` and ``lock/``. One stanza, ``dolbom``, for the primary.

* Archiving: provisioning starts the primary with ``archive_mode=on`` and ``archive_command`` =
  ``pgbackrest archive-push`` (``archive_options``) and creates the stanza (``ensure_stanza``), unless
  ``DOLBOM_PG_ARCHIVE=0``. A WAL segment is archived when full or after ``ARCHIVE_TIMEOUT_S`` at the latest.
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
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import psycopg

from geo.errors import DolbomError, ProvisioningError
from geo.ops import provision
from geo.settings import Settings

STANZA = "dolbom"
BackupKind = Literal["full", "diff", "incr"]
BACKUP_KINDS: tuple[BackupKind, ...] = ("full", "diff", "incr")
# A WAL segment is archived when full or, on a quiet cluster, this many seconds after its first write: at most
# this much acknowledged work is only on the cluster's own disk.
ARCHIVE_TIMEOUT_S = 60
# When archiving fails (repository unwritable), pgBackRest drops WAL rather than let pg_wal fill the disk past
# this: the cluster keeps running, point-in-time recovery across the gap is lost (and logged).
ARCHIVE_QUEUE_MAX = "4GiB"
# Characters a path in archive_command (run by a shell) or in pgbackrest.conf may not hold.
_UNSAFE_PATH_CHARS = set(" \t\n\r'\"\\$`;&|<>()*?[]{}!#~%=")


class BackupError(DolbomError):
    """A backup, listing or restore of the local cluster failed or was refused."""

    title = "Backup failed"


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


def backup_dir(settings: Settings) -> Path:
    """The pgBackRest repository and its configuration, log and lock files."""
    return settings.local.data_dir / "backups"


def config_path(settings: Settings) -> Path:
    return backup_dir(settings) / "pgbackrest.conf"


def require_local(settings: Settings, action: str) -> None:
    """Refuse ``action`` when ``DATABASE_URL`` points at a server of its own."""
    if settings.database.url:
        raise BackupError(f"DATABASE_URL is set: `dolbom db {action}` works on the project-local cluster only; "
                          "back up and restore that server with its own tooling (e.g. pgbackrest on its host)")


def _safe_path(path: Path) -> str:
    text = str(path)
    bad = sorted(set(text) & _UNSAFE_PATH_CHARS)
    if bad or not path.is_absolute():
        raise ProvisioningError(f"{text!r} cannot be used for backups (needs an absolute path without "
                                f"{''.join(bad) or 'relative parts'}); set DOLBOM_DATA_DIR to a plain path")
    return text


def pgbackrest_binary() -> Path:
    """Debian's ``pgbackrest`` (``ensure_pgbackrest`` installs it when missing)."""
    found = shutil.which("pgbackrest")
    if found is None:
        raise ProvisioningError("pgbackrest is not installed; run scripts/setup or apt-get install pgbackrest")
    return Path(found)


def ensure_pgbackrest() -> None:
    """``apt-get install pgbackrest`` when it is missing (as root, or via passwordless sudo)."""
    if shutil.which("pgbackrest"):
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ProvisioningError("pgbackrest is not installed; install it as root (no sudo available) or "
                                    "set DOLBOM_PG_ARCHIVE=0")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, capture_output=True, text=True)
    done = subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "pgbackrest"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ProvisioningError(f"apt-get install pgbackrest failed: {done.stderr[-2000:]}")


def config_text(settings: Settings) -> str:
    """``pgbackrest.conf`` of the local cluster: one local repository (zstd), the primary by its unix socket.

    * ``repo1-retention-full``: ``DOLBOM_BACKUP_RETENTION_FULL`` full backups (and the diff/incr backups and
      archived WAL that depend on them) are kept; ``expire`` runs after every backup.
    * ``start-fast``: a backup starts with an immediate checkpoint instead of waiting for the next one.
    * ``archive-push-queue-max``: see ``ARCHIVE_QUEUE_MAX``.
    * ``lock-path`` in the repository's folder: the clusters of several checkouts on one machine (all with the
      stanza ``dolbom``) do not wait for each other's locks.
    """
    d = backup_dir(settings)
    return "\n".join([
        "[global]",
        f"repo1-path={_safe_path(d / 'repo')}",
        f"repo1-retention-full={settings.local.backup_retention_full}",
        "compress-type=zst",
        "compress-level=3",
        "start-fast=y",
        f"archive-push-queue-max={ARCHIVE_QUEUE_MAX}",
        f"log-path={_safe_path(d / 'log')}",
        f"lock-path={_safe_path(d / 'lock')}",
        "log-level-console=warn",
        "log-level-file=info",
        "",
        f"[{STANZA}]",
        f"pg1-path={_safe_path(settings.pg_dir)}",
        f"pg1-socket-path={_safe_path(settings.pg_dir)}",
        f"pg1-port={settings.local.pg_port}",
        "pg1-user=postgres",
        "",
    ])


def write_config(settings: Settings) -> Path:
    """Create the repository's folders and write ``pgbackrest.conf`` (owned by the cluster owner)."""
    d = backup_dir(settings)
    for sub in (d, d / "repo", d / "log", d / "lock"):
        sub.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    path = config_path(settings)
    path.write_text(config_text(settings))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for sub in (d, path, d / "repo", d / "log", d / "lock"):
            os.chown(sub, owner.pw_uid, owner.pw_gid)
    return path


def archive_options(settings: Settings) -> str:
    """``pg_ctl -o`` options that archive the primary's WAL with ``pgbackrest archive-push`` (empty when
    ``DOLBOM_PG_ARCHIVE=0``)."""
    if not settings.local.archive:
        return ""
    config = _safe_path(config_path(settings))
    command = f"{pgbackrest_binary()} --config={config} --stanza={STANZA} archive-push %p"
    return (f" -c archive_mode=on -c archive_timeout={ARCHIVE_TIMEOUT_S} -c archive_command='{command}'")


def _pgbackrest(settings: Settings, *args: str, timeout_s: float | None = None) -> str:
    """Run ``pgbackrest`` as the cluster owner with the local configuration; its stdout."""
    cmd = [str(pgbackrest_binary()), f"--config={config_path(settings)}", f"--stanza={STANZA}", *args]
    try:
        done = subprocess.run(provision._as_cluster_owner(cmd), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"pgbackrest {args[-1]} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[-1500:]
        raise BackupError(f"pgbackrest {args[-1]} failed: {message}")
    return done.stdout


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


def ensure_stanza(settings: Settings) -> None:
    """Write the configuration and create the stanza (idempotent) for the running, archiving local primary."""
    if not settings.local.archive:
        return
    write_config(settings)
    try:
        _pgbackrest(settings, "stanza-create", timeout_s=120)
    except BackupError as exc:
        if "[028]" not in exc.detail:
            raise
        # The repository belongs to an earlier cluster of this folder (its pg/ was removed and made again):
        # keep those backups beside it, untouched, and start a repository for this cluster.
        repo = backup_dir(settings) / "repo"
        repo.rename(repo.with_name(f"repo.other-cluster-{datetime.now(tz=UTC).strftime('%Y%m%dT%H%M%SZ')}"))
        write_config(settings)
        _pgbackrest(settings, "stanza-create", timeout_s=120)


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
        With ``DATABASE_URL`` set, a naive or future ``to``, no backup that ended before ``to``, or a failed
        recovery (the server log's last lines are in the message; the set-aside directory is untouched).
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
