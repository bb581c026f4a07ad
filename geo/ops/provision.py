"""Project-local PostGIS: install Debian's packages if missing, ``initdb``, start/stop with ``pg_ctl``.

Used when ``DATABASE_URL`` is not set. The cluster lives in ``Settings.pg_dir``, listens only on a unix
socket in that directory (no TCP port is taken) and trusts local connections.

``pgbouncer_up`` puts Debian's PgBouncer in transaction mode in front of it (a unix socket in
``Settings.pgbouncer_dir``, TCP only when ``DOLBOM_PGBOUNCER_LISTEN_ADDR`` is set), started as the cluster owner.

Backups: unless ``DOLBOM_PG_ARCHIVE=0`` the primary archives its WAL into the pgBackRest repository of
``geo.ops.archiving`` (``archive_mode=on``, ``archive_command`` = ``pgbackrest archive-push``), whose stanza ``up``
creates; standbys do not archive.

Read replicas: ``up(settings, replicas=N)`` adds N hot standbys beside the primary, each a ``pg_basebackup -R``
copy in ``Settings.local_replica_dir(i)`` streaming from the primary through its own physical replication slot
(so a standby that was stopped catches up from the WAL the slot kept), on its own socket and port.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from geo.errors import ProvisioningError
from geo.ops import archiving
from geo.settings import Settings

EXTENSIONS = ("postgis", "pgrouting")


# WAL a replication slot may hold for a standby that is away, before the primary gives up on it (its disk
# must not fill because a standby was stopped and forgotten).
MAX_CONNECTIONS = 300
MAX_SLOT_WAL_KEEP = "1GB"


@dataclass(frozen=True)
class ReplicaStatus:
    """One local standby as ``dolbom db status`` reports it."""

    index: int
    pg_dir: Path
    running: bool
    url: str
    # Bytes of WAL the standby has not replayed yet (None when it or the primary does not answer).
    replay_lag_bytes: int | None


@dataclass(frozen=True)
class ClusterStatus:
    """What ``dolbom db status`` reports."""

    pg_dir: Path
    initialised: bool
    running: bool
    url: str
    replicas: tuple[ReplicaStatus, ...] = ()


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


def _dir_running(pg_dir: Path) -> bool:
    """True when the postmaster of the cluster in ``pg_dir`` is alive."""
    if not (pg_dir / "PG_VERSION").exists():
        return False
    done = subprocess.run(_as_cluster_owner([str(pg_bin_dir() / "pg_ctl"), "status", "-D", str(pg_dir)]),
                          capture_output=True, text=True)
    return done.returncode == 0


def is_running(settings: Settings) -> bool:
    """True when the local cluster's postmaster answers."""
    return _dir_running(settings.pg_dir)


def _owned_dir(settings: Settings, pg_dir: Path) -> None:
    """Create ``pg_dir`` for the cluster owner (``postgres`` when we are root)."""
    pg_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(pg_dir, owner.pw_uid, owner.pw_gid)
        os.chmod(pg_dir, 0o700)
        # The cluster owner must be able to reach its directory.
        for parent in [settings.local.data_dir, *settings.local.data_dir.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)


@contextmanager
def cluster_lock(settings: Settings) -> Iterator[None]:
    """Hold the lock file ``provision.lock`` in the data folder: processes that bring the same local cluster up
    at once (pytest-xdist workers, two ``dolbom`` commands) take turns, so only one of them runs ``initdb``,
    ``pg_ctl start`` or creates a database."""
    data_dir = settings.local.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "provision.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(settings: Settings, *, replicas: int | None = None) -> str:
    """Install (if needed), initialise (if needed) and start the local cluster and ``replicas`` standbys
    (default ``settings.local.replicas``), and the standbys created earlier (the API reads from every standby
    that exists: one left stopped would only be reported down); return the primary's database URL. Concurrent
    calls on one data folder take turns (``cluster_lock``)."""
    with cluster_lock(settings):
        return _up(settings, replicas=replicas)


def _up(settings: Settings, *, replicas: int | None) -> str:
    bin_dir = pg_bin_dir()
    ensure_packages(pg_major(bin_dir))
    pg_dir = settings.pg_dir
    if not (pg_dir / "PG_VERSION").exists():
        _owned_dir(settings, pg_dir)
        _run([str(bin_dir / "initdb"), "-D", str(pg_dir), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C.UTF-8"])
    if settings.local.archive:
        archiving.ensure_pgbackrest()
        archiving.write_config(settings)
    start_primary(settings)
    ensure_database(settings, settings.local.pg_database)
    if settings.local.archive:
        archiving.ensure_stanza(settings)
    count = settings.local.replicas if replicas is None else replicas
    for index in range(1, max(count, len(settings.local_replica_indexes())) + 1):
        start_replica(settings, index)
    return settings.local_database_url()


def start_primary(settings: Settings) -> None:
    """Start the (initialised) local primary when it is not running."""
    if is_running(settings):
        return
    pg_dir = settings.pg_dir
    # fsync and synchronous_commit stay on (PostgreSQL's defaults): the cluster holds applications and
    # bookings that must survive a crash or power loss. wal_level=replica and max_wal_senders are defaults too.
    # max_connections: room for four API workers with full pools (geo.db.api_connections_per_worker: 71 each by
    # default) besides imports and the notification worker; standbys must allow at least as many.
    opts = (f"-c listen_addresses='' -k {pg_dir} -p {settings.local.pg_port} -c shared_buffers=256MB "
            f"-c max_connections={MAX_CONNECTIONS} -c max_slot_wal_keep_size={MAX_SLOT_WAL_KEEP}")
    # WAL archiving into the pgBackRest repository (geo.ops.archiving), for point-in-time recovery.
    opts += archiving.archive_options(settings)
    _run([str(pg_bin_dir() / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(pg_dir),
          "-l", str(pg_dir / "server.log"), "-o", opts])


def stop_primary(settings: Settings) -> bool:
    """Stop the local primary only (its standbys keep serving reads); False when it was not running."""
    return _stop_dir(settings.pg_dir)


def _stop_dir(pg_dir: Path) -> bool:
    if not _dir_running(pg_dir):
        return False
    _run([str(pg_bin_dir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(pg_dir)])
    return True


def _slot_name(index: int) -> str:
    return f"dolbom_replica_{index}"


def create_replica(settings: Settings, index: int) -> None:
    """A new standby ``index``: ``pg_basebackup -R`` of the running primary through a fresh replication slot
    (``-R`` writes ``primary_conninfo``, ``primary_slot_name`` and ``standby.signal``)."""
    replica_dir = settings.local_replica_dir(index)
    if (replica_dir / "PG_VERSION").exists():
        return
    if replica_dir.exists() and any(replica_dir.iterdir()):
        raise ProvisioningError(f"{replica_dir} exists but holds no cluster; remove it to create standby {index}")
    slot = _slot_name(index)
    with psycopg.connect(_libpq_conninfo(settings, "postgres"), autocommit=True) as admin:
        # A slot left by an earlier standby of the same index would hold WAL from its old position.
        admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                      (slot,))
    _owned_dir(settings, replica_dir)
    _run([str(pg_bin_dir() / "pg_basebackup"), "-D", str(replica_dir), "-h", str(settings.pg_dir),
          "-p", str(settings.local.pg_port), "-U", "postgres", "-R", "-C", "-S", slot, "-X", "stream",
          "-c", "fast"])


def start_replica(settings: Settings, index: int) -> None:
    """Create standby ``index`` if needed and start it (hot standby: it answers read-only queries)."""
    create_replica(settings, index)
    replica_dir = settings.local_replica_dir(index)
    if _dir_running(replica_dir):
        return
    # hot_standby_feedback: vacuum on the primary waits for the standby's queries instead of cancelling them.
    opts = (f"-c listen_addresses='' -k {replica_dir} -p {settings.local_replica_port(index)} "
            f"-c shared_buffers=128MB -c max_connections={MAX_CONNECTIONS} -c hot_standby=on "
            "-c hot_standby_feedback=on")
    _run([str(pg_bin_dir() / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(replica_dir),
          "-l", str(replica_dir / "server.log"), "-o", opts])


def stop_replica(settings: Settings, index: int) -> bool:
    """Stop standby ``index`` (its slot keeps its WAL on the primary); False when it was not running."""
    return _stop_dir(settings.local_replica_dir(index))


def _libpq_conninfo(settings: Settings, database: str) -> str:
    return f"host={settings.pg_dir} port={settings.local.pg_port} user=postgres dbname={database}"


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
    """Stop the local cluster and its standbys; False when the primary was not running."""
    with cluster_lock(settings):
        for index in settings.local_replica_indexes():
            stop_replica(settings, index)
        return stop_primary(settings)


def _replay_lag_bytes(settings: Settings, index: int) -> int | None:
    try:
        with psycopg.connect(_libpq_conninfo(settings, "postgres"), connect_timeout=2) as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        conninfo = (f"host={settings.local_replica_dir(index)} port={settings.local_replica_port(index)} "
                    "user=postgres dbname=postgres")
        with psycopg.connect(conninfo, connect_timeout=2) as standby:
            lag = standby.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                                  (row[0] if row else None,)).fetchone()
    except psycopg.OperationalError:
        return None
    return max(0, int(lag[0])) if lag and lag[0] is not None else None


def status(settings: Settings) -> ClusterStatus:
    """Whether the local cluster is initialised and running, and its standbys with their replay lag."""
    replicas = []
    for index in settings.local_replica_indexes():
        running = _dir_running(settings.local_replica_dir(index))
        replicas.append(ReplicaStatus(
            index=index, pg_dir=settings.local_replica_dir(index), running=running,
            url=settings.local_replica_url(index),
            replay_lag_bytes=_replay_lag_bytes(settings, index) if running else None))
    return ClusterStatus(
        pg_dir=settings.pg_dir,
        initialised=(settings.pg_dir / "PG_VERSION").exists(),
        running=is_running(settings),
        url=settings.local_database_url(),
        replicas=tuple(replicas),
    )


# --- PgBouncer (transaction pooling) in front of the local cluster -----------------------------------------------


@dataclass(frozen=True)
class PgBouncerStatus:
    """What ``dolbom db status`` reports about the local PgBouncer."""

    dir: Path
    configured: bool
    running: bool
    pid: int | None
    url: str


def pgbouncer_binary() -> Path:
    """Debian's ``pgbouncer`` (``apt-get install pgbouncer``, done by ``ensure_pgbouncer`` when missing)."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        raise ProvisioningError("pgbouncer is not installed; run scripts/setup or apt-get install pgbouncer")
    return Path(found)


def ensure_pgbouncer() -> None:
    """``apt-get install pgbouncer`` when it is missing (as root, or via passwordless sudo)."""
    if shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists():
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ProvisioningError("pgbouncer is not installed; install it as root (no sudo available)")
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, capture_output=True, text=True)
    done = subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "pgbouncer"], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise ProvisioningError(f"apt-get install pgbouncer failed: {done.stderr[-2000:]}")


def _ini_value(value: str) -> str:
    """An ini value PgBouncer reads back as written (paths with spaces or ``;`` would be cut)."""
    if any(c in value for c in "\n\r;#") or value != value.strip():
        raise ProvisioningError(f"cannot put {value!r} into pgbouncer.ini")
    return value


# Seconds PgBouncer waits after a failed server login before it tries again (its default: 15).
PGBOUNCER_LOGIN_RETRY_S = 0.5


def pgbouncer_ini(settings: Settings) -> str:
    """The ``pgbouncer.ini`` of the local cluster.

    * ``pool_mode = transaction``: a server connection belongs to a client for one transaction only, so
      ``pgbouncer_pool_size`` server connections serve up to ``pgbouncer_max_client_conn`` clients. Nothing
      may rely on session state (prepared statements, ``SET``, LISTEN, session advisory locks, temporary tables
      outliving a transaction): see ``geo.db.connect_kwargs`` and ``Settings.direct_database_url``.
    * Every database of the cluster (``*``) on its unix socket, as ``postgres``; the cluster trusts local
      connections, so PgBouncer does too (``auth_type = trust``, the one user in ``userlist.txt``).
    * ``server_reset_query`` empty: in transaction mode a server connection is not reset between clients
      (``DISCARD ALL`` would only run in session mode anyway).
    * ``ignore_startup_parameters = extra_float_digits``: some drivers (JDBC, some GIS desktop tools) send it
      at startup and PgBouncer refuses unknown startup parameters; psycopg sends none.
    * ``server_login_retry = 0.5``: after a failed login to PostgreSQL (it was restarting) PgBouncer waits this
      long before trying again, and fails its clients meanwhile; with the default 15 s, writes kept failing
      8 to 14 s after PostgreSQL was back (tests/api/test_pgbouncer_recovery.py). A local server refuses a
      login in microseconds, so retrying twice a second costs nothing.
    """
    d = settings.pgbouncer_dir
    lines = [
        "[databases]",
        f"* = host={_ini_value(str(settings.pg_dir))} port={settings.local.pg_port} user=postgres",
        "",
        "[pgbouncer]",
        *([f"listen_addr = {_ini_value(settings.pgbouncer.listen_addr)}"] if settings.pgbouncer.listen_addr else []),
        f"listen_port = {settings.pgbouncer.port}",
        f"unix_socket_dir = {_ini_value(str(d))}",
        "auth_type = trust",
        f"auth_file = {_ini_value(str(d / 'userlist.txt'))}",
        "admin_users = postgres",
        "stats_users = postgres",
        "pool_mode = transaction",
        "server_reset_query =",
        f"max_client_conn = {settings.pgbouncer.max_client_conn}",
        f"default_pool_size = {settings.pgbouncer.pool_size}",
        "ignore_startup_parameters = extra_float_digits",
        f"server_login_retry = {PGBOUNCER_LOGIN_RETRY_S}",
        f"pidfile = {_ini_value(str(d / 'pgbouncer.pid'))}",
        f"logfile = {_ini_value(str(d / 'pgbouncer.log'))}",
        "",
    ]
    return "\n".join(lines)


def _pgbouncer_pid(settings: Settings) -> int | None:
    """The pid in PgBouncer's pid file when that process is alive."""
    try:
        pid = int((settings.pgbouncer_dir / "pgbouncer.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return pid


def pgbouncer_running(settings: Settings) -> bool:
    """True when the local PgBouncer answers on its unix socket."""
    if _pgbouncer_pid(settings) is None:
        return False
    try:
        with psycopg.connect(_pgbouncer_conninfo(settings, "pgbouncer"), autocommit=True, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _pgbouncer_conninfo(settings: Settings, database: str) -> str:
    return f"host={settings.pgbouncer_dir} port={settings.pgbouncer.port} user=postgres dbname={database}"


def pgbouncer_up(settings: Settings) -> str:
    """Write ``pgbouncer.ini`` and start the local PgBouncer (daemon, as ``postgres`` when run as root) in front
    of the running local cluster; return its URL. A running PgBouncer is reloaded with the current settings."""
    ensure_pgbouncer()
    binary = pgbouncer_binary()
    if not is_running(settings):
        raise ProvisioningError(f"the local cluster in {settings.pg_dir} is not running; `dolbom db up` first")
    d = settings.pgbouncer_dir
    d.mkdir(parents=True, exist_ok=True)
    # Only the owner reaches the socket (as initdb does for the cluster's directory): PgBouncer trusts its clients.
    d.chmod(0o700)
    (d / "pgbouncer.ini").write_text(pgbouncer_ini(settings))
    (d / "userlist.txt").write_text('"postgres" ""\n')
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (d, *d.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    pid = _pgbouncer_pid(settings)
    if pid is not None:
        # Running: RELOAD re-reads the ini (pool sizes); a changed port needs `dolbom db down` first.
        try:
            with psycopg.connect(_pgbouncer_conninfo(settings, "pgbouncer"), autocommit=True) as admin:
                admin.execute("RELOAD")
        except psycopg.Error as exc:
            raise ProvisioningError(f"pgbouncer (pid {pid}) runs but does not answer on port "
                                    f"{settings.pgbouncer.port} ({exc}); `dolbom db down` and up again") from exc
        return settings.local_pgbouncer_url()
    done = subprocess.run(_as_cluster_owner([str(binary), "-d", str(d / "pgbouncer.ini")]),
                          capture_output=True, text=True)
    deadline = time.monotonic() + 15
    while not pgbouncer_running(settings):
        if done.returncode != 0 or time.monotonic() > deadline:
            log = d / "pgbouncer.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ProvisioningError(f"pgbouncer did not start: {(done.stderr or tail or 'no log')[-1500:]}")
        time.sleep(0.1)
    return settings.local_pgbouncer_url()


def pgbouncer_down(settings: Settings) -> bool:
    """Stop the local PgBouncer (SIGTERM, then wait); False when it was not running."""
    pid = _pgbouncer_pid(settings)
    if pid is None:
        return False
    # SIGTERM is PgBouncer 1.18's immediate shutdown (SIGINT would wait for every client to disconnect).
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _pgbouncer_pid(settings) is not None:
        if time.monotonic() > deadline:
            raise ProvisioningError(f"pgbouncer (pid {pid}) did not stop")
        time.sleep(0.1)
    return True


def pgbouncer_status(settings: Settings) -> PgBouncerStatus:
    """Whether the local PgBouncer is configured and running."""
    return PgBouncerStatus(dir=settings.pgbouncer_dir, configured=(settings.pgbouncer_dir / "pgbouncer.ini").exists(),
                           running=pgbouncer_running(settings), pid=_pgbouncer_pid(settings),
                           url=settings.local_pgbouncer_url())
