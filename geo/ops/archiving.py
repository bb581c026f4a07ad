"""WAL archiving of the project-local primary into a pgBackRest repository (Debian's ``pgbackrest``): the
configuration, the ``archive_command`` provisioning starts the primary with, the stanza. Backups and restores
built on it are ``geo.ops.backup``; this module imports neither it nor ``geo.ops.provision`` (which uses it).

The repository lives in ``backup_dir`` (``DOLBOM_DATA_DIR/backups``): ``pgbackrest.conf``, ``repo/`` (backups and
archived WAL, zstd-compressed), ``log/`` and ``lock/``. One stanza, ``dolbom``, for the primary.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from geo.errors import DolbomError, ProvisioningError
from geo.settings import Settings

STANZA = "dolbom"
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


def backup_dir(settings: Settings) -> Path:
    """The pgBackRest repository and its configuration, log and lock files."""
    return settings.local.data_dir / "backups"


def config_path(settings: Settings) -> Path:
    return backup_dir(settings) / "pgbackrest.conf"


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    """As ``geo.ops.provision`` runs PostgreSQL's tools: as the ``postgres`` system user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


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


def run_pgbackrest(settings: Settings, *args: str, timeout_s: float | None = None) -> str:
    """Run ``pgbackrest`` as the cluster owner with the local configuration; its stdout."""
    cmd = [str(pgbackrest_binary()), f"--config={config_path(settings)}", f"--stanza={STANZA}", *args]
    try:
        done = subprocess.run(_as_cluster_owner(cmd), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"pgbackrest {args[-1]} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[-1500:]
        raise BackupError(f"pgbackrest {args[-1]} failed: {message}")
    return done.stdout


def ensure_stanza(settings: Settings) -> None:
    """Write the configuration and create the stanza (idempotent) for the running, archiving local primary."""
    if not settings.local.archive:
        return
    write_config(settings)
    try:
        run_pgbackrest(settings, "stanza-create", timeout_s=120)
    except BackupError as exc:
        if "[028]" not in exc.detail:
            raise
        # The repository belongs to an earlier cluster of this folder (its pg/ was removed and made again):
        # keep those backups beside it, untouched, and start a repository for this cluster.
        repo = backup_dir(settings) / "repo"
        repo.rename(repo.with_name(f"repo.other-cluster-{datetime.now(tz=UTC).strftime('%Y%m%dT%H%M%SZ')}"))
        write_config(settings)
        run_pgbackrest(settings, "stanza-create", timeout_s=120)
