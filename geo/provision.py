"""Project-local PostGIS: install Debian's packages if missing, ``initdb``, start/stop with ``pg_ctl``.

Used when ``DATABASE_URL`` is not set. The cluster lives in ``Settings.pg_dir``, listens only on a unix
socket in that directory (no TCP port is taken) and trusts local connections.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from geo.errors import ProvisioningError
from geo.settings import Settings

EXTENSIONS = ("postgis", "pgrouting")


@dataclass(frozen=True)
class ClusterStatus:
    """What ``dolbom db status`` reports."""

    pg_dir: Path
    initialised: bool
    running: bool
    url: str


def pg_bin_dir() -> Path:
    """Newest installed PostgreSQL server's ``bin`` directory."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise ProvisioningError("no PostgreSQL server found under /usr/lib/postgresql; install postgresql-15")
    return Path(candidates[-1]).parent


def pg_major(bin_dir: Path) -> str:
    """Major version of the server in ``bin_dir`` (``/usr/lib/postgresql/15/bin`` -> ``15``)."""
    return bin_dir.parent.name


def missing_packages(major: str) -> list[str]:
    """Debian packages needed for PostGIS + pgRouting that are not installed for this server."""
    ext_dir = Path(f"/usr/share/postgresql/{major}/extension")
    wanted = {
        "postgis": f"postgresql-{major}-postgis-3",
        "pgrouting": f"postgresql-{major}-pgrouting",
    }
    return [pkg for ext, pkg in wanted.items() if not (ext_dir / f"{ext}.control").exists()]


def ensure_packages(major: str) -> None:
    """``apt-get install`` the PostGIS/pgRouting packages when missing (as root, or via passwordless sudo)."""
    packages = missing_packages(major)
    if not packages:
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ProvisioningError(f"missing packages {packages}; install them as root (no sudo available)")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        done = subprocess.run([*prefix, *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0 and cmd[1] == "install":
            raise ProvisioningError(f"apt-get install {' '.join(packages)} failed: {done.stderr[-2000:]}")


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    """initdb/pg_ctl refuse to run as root: run them as the ``postgres`` system user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_as_cluster_owner(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise ProvisioningError(f"{' '.join(cmd[:2])} failed: {(done.stderr or done.stdout)[-2000:]}")
    return done


def is_running(settings: Settings) -> bool:
    """True when the local cluster's postmaster answers."""
    pg_ctl = pg_bin_dir() / "pg_ctl"
    if not (settings.pg_dir / "PG_VERSION").exists():
        return False
    done = subprocess.run(_as_cluster_owner([str(pg_ctl), "status", "-D", str(settings.pg_dir)]),
                          capture_output=True, text=True)
    return done.returncode == 0


def up(settings: Settings) -> str:
    """Install (if needed), initialise (if needed) and start the local cluster; return its database URL."""
    bin_dir = pg_bin_dir()
    ensure_packages(pg_major(bin_dir))
    pg_dir = settings.pg_dir
    if not (pg_dir / "PG_VERSION").exists():
        pg_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(pg_dir, owner.pw_uid, owner.pw_gid)
            # The cluster owner must be able to reach its directory.
            for parent in [settings.data_dir, *settings.data_dir.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        _run([str(bin_dir / "initdb"), "-D", str(pg_dir), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C.UTF-8"])
    if not is_running(settings):
        log = pg_dir / "server.log"
        # fsync and synchronous_commit stay on (PostgreSQL's defaults): the cluster holds applications and
        # bookings that must survive a crash or power loss.
        # max_connections: room for four API workers with full pools (geo.db.api_connections_per_worker: 71
        # each by default) besides imports and the notification worker.
        opts = (f"-c listen_addresses='' -k {pg_dir} -p {settings.local_pg_port} -c shared_buffers=256MB "
                "-c max_connections=300")
        _run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(pg_dir), "-l", str(log),
              "-o", opts])
    ensure_database(settings, settings.local_pg_database)
    return settings.local_database_url()


def _libpq_conninfo(settings: Settings, database: str) -> str:
    return f"host={settings.pg_dir} port={settings.local_pg_port} user=postgres dbname={database}"


def ensure_database(settings: Settings, database: str) -> None:
    """Create ``database`` in the local cluster with PostGIS and pgRouting, if it does not exist."""
    deadline = time.monotonic() + 30
    while True:
        try:
            admin = psycopg.connect(_libpq_conninfo(settings, "postgres"), autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(_libpq_conninfo(settings, database), autocommit=True) as conn:
        for ext in EXTENSIONS:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))


def drop_database(settings: Settings, database: str) -> None:
    """Drop ``database`` from the local cluster (tests use throw-away databases)."""
    with psycopg.connect(_libpq_conninfo(settings, "postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(database)))


def down(settings: Settings) -> bool:
    """Stop the local cluster; False when it was not running."""
    if not is_running(settings):
        return False
    _run([str(pg_bin_dir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(settings.pg_dir)])
    return True


def status(settings: Settings) -> ClusterStatus:
    """Whether the local cluster is initialised and running."""
    return ClusterStatus(
        pg_dir=settings.pg_dir,
        initialised=(settings.pg_dir / "PG_VERSION").exists(),
        running=is_running(settings),
        url=settings.local_database_url(),
    )
