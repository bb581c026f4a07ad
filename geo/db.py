"""Database access: the SQLAlchemy 2 engine (writes, ORM, migrations) and psycopg 3 connections for reads.

Search statements are ``psycopg.sql`` compositions run on the driver connection: ``driver_connection`` finds it
under a SQLAlchemy ``Connection`` or ``Session`` (the same transaction) and ``make_read_pool`` opens an async
psycopg pool for the API's read path. Map layers build SQLAlchemy Core statements and run them on that same pool:
``psycopg_query`` turns one into SQL text and parameters (compiled once per statement shape), ``fetch_all_async``
runs it, one statement, one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import ARRAY, Connection, Engine, TextClause, create_engine, make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from geo.settings import Settings, normalise_url

Conn: TypeAlias = Connection | Session | psycopg.Connection[Any]


def _server_address(url: str) -> tuple[str | None, str | None]:
    """(host or unix-socket directory, port) a database URL connects to."""
    parsed = make_url(normalise_url(url))

    def query(key: str) -> str | None:
        value = parsed.query.get(key)
        return value[0] if isinstance(value, tuple) else value

    port = parsed.port if parsed.port is not None else query("port")
    return parsed.host or query("host"), None if port is None else str(port)


def through_pgbouncer(url: str, settings: Settings | None) -> bool:
    """True when connections to ``url`` go through PgBouncer in transaction mode: ``settings.pgbouncer.enabled`` is on
    and ``url`` names the same host (or socket directory) and port as ``effective_database_url``, whatever the
    database. Each transaction may then run on another server connection. The direct URL, and any other server
    (a replica), is not pooled."""
    if settings is None or not settings.through_pgbouncer:
        return False
    return _server_address(url) == _server_address(settings.effective_database_url)


def connect_kwargs(url: str, settings: Settings | None) -> dict[str, Any]:
    """psycopg connection options for ``url``: the one place that decides what changes behind PgBouncer.

    PgBouncer 1.18 in transaction mode does not carry protocol-level prepared statements: a statement prepared
    on one server connection is unknown to the next one ("prepared statement _pg3_0 does not exist") or
    collides with another client's of the same name. psycopg prepares a query after 5 executions by default,
    so through PgBouncer nothing is prepared (``prepare_threshold=None``); direct connections keep the default.
    """
    return {"prepare_threshold": None} if through_pgbouncer(url, settings) else {}


def _with_connect_args(url: str, settings: Settings | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    extra = connect_kwargs(url, settings)
    if not extra:
        return kwargs
    return {**kwargs, "connect_args": {**kwargs.get("connect_args", {}), **extra}}


def make_engine(url: str | None = None, *, settings: Settings | None = None, **kwargs: Any) -> Engine:
    """Engine for ``url``, or for ``settings``' database when no URL is given (one of them is required). Its
    errors never show the statement's parameters (``hide_parameters``: they hold personal data). No
    pre-ping per checkout: a connection that died is replaced by the pool on the error, and the API answers 503
    meanwhile. Through PgBouncer (see ``connect_kwargs``) nothing is prepared."""
    if url is None:
        if settings is None:
            raise ValueError("make_engine needs a url or settings")
        url = settings.effective_database_url
    kwargs.setdefault("hide_parameters", True)  # errors must not carry request values (children's names) to logs
    return create_engine(url, **_with_connect_args(url, settings, kwargs))


def make_direct_engine(settings: Settings, **kwargs: Any) -> Engine:
    """Engine on PostgreSQL itself, bypassing PgBouncer: migrations and DDL, long imports (one transaction for
    minutes would hold one of PgBouncer's few server connections), anything needing session state."""
    kwargs.setdefault("hide_parameters", True)
    return create_engine(settings.direct_database_url, **kwargs)


def as_libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a libpq URL for psycopg (other URLs unchanged)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def libpq_url(settings: Settings) -> str:
    """The configured database as a libpq URL (no SQLAlchemy driver suffix) for psycopg."""
    return as_libpq_url(settings.effective_database_url)


# Session setting of every read connection. Searches are prepared (parsed once per connection) but planned for
# their values every time: a generic plan cannot see how selective the point, radius and filters are, and on a
# large table it picks e.g. the services GIN index over the KNN scan (measured by benchmarks/bench_read.py at
# 300,000 centres: radius p50 15x that of a custom plan).
READ_SESSION_SETUP = "SET plan_cache_mode = force_custom_plan"


async def _configure_read_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(READ_SESSION_SETUP)


# Connection pools of one API worker process (api/app.py sizes its pools from these): the sync engine (pool,
# overflow) and the vacancy LISTEN connection; the read pool (searches, map layers, tiles) adds
# ``read_pool_size``. Every worker has its own, so the server may open N times as many.
API_ENGINE_POOL = (10, 10)
API_LISTEN_CONNECTIONS = 1


def api_connections_per_worker(settings: Settings) -> int:
    """The most database connections one API worker process opens (all its pools full)."""
    return sum(API_ENGINE_POOL) + settings.database.read_pool_size + API_LISTEN_CONNECTIONS


def make_read_pool(settings: Settings, *, min_size: int = 2, max_size: int = 10, url: str | None = None,
                   check: bool = False) -> AsyncConnectionPool:
    """An async psycopg pool for reads (not opened; ``await pool.open()``) on ``url`` (default: the configured
    database). Connections are autocommit: every read is one statement, so no BEGIN/ROLLBACK round trips;
    statements are prepared after their first use and always planned with their values (``READ_SESSION_SETUP``).
    ``check``: test each connection on checkout (one empty round trip), for replica pools whose server may have
    gone since the connection was last used, so that the caller can fall back before running its query.

    Through PgBouncer (``connect_kwargs``) nothing is prepared and no session setting is made: a ``SET`` would
    land on whichever server connection ran it, for whichever client gets that connection next. None is
    needed there: an unprepared query is sent as the unnamed statement, which PostgreSQL plans anew with its
    values on every execution (a generic plan is only considered for a statement already run 5 times)."""
    target = url or settings.effective_database_url
    pooled = through_pgbouncer(target, settings)
    return AsyncConnectionPool(
        as_libpq_url(target), min_size=min_size, max_size=max_size, open=False,
        kwargs={"autocommit": True, "prepare_threshold": 1, **connect_kwargs(target, settings)},
        configure=None if pooled else _configure_read_connection,
        check=AsyncConnectionPool.check_connection if check else None, timeout=settings.database.timeout_s,
    )


def composed(conn: Connection, query: sql.Composable) -> TextClause:
    """A ``psycopg.sql`` composition (identifiers quoted by psycopg) as an executable SQLAlchemy clause, for SQL
    that mixes composed fragments with SQLAlchemy's ``:name`` parameters."""
    return text(query.as_string(driver_connection(conn)))


def driver_connection(conn: Conn) -> psycopg.Connection[Any]:
    """The psycopg connection under ``conn`` (inside the same transaction when ``conn`` is SQLAlchemy's)."""
    if isinstance(conn, psycopg.Connection):
        return conn
    sa_conn = conn.connection() if isinstance(conn, Session) else conn
    driver = sa_conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_database(engine: Engine) -> dict[str, str]:
    """PostgreSQL and PostGIS versions; raises when the database is unreachable."""
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar_one()
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return {"postgresql": str(pg), "postgis": str(postgis)}


PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
_COMPILED_MAX = 512
RowProcessors: TypeAlias = tuple[Callable[[Any], Any] | None, ...]
_compiled: dict[Any, tuple[SQLCompiler, RowProcessors]] = {}


def _compile(stmt: ClauseElement) -> tuple[SQLCompiler, RowProcessors, Any]:
    """The compiled form of ``stmt``, its result columns' processors, and its cache key (None: not cacheable)."""
    key = stmt._generate_cache_key()
    cached = _compiled.get(key.key) if key is not None else None
    if cached is None:
        compiled: SQLCompiler = stmt.compile(dialect=PSYCOPG, cache_key=key)  # type: ignore[assignment]
        processors = tuple(_row_processor(column.type) for column in compiled._result_columns)
        cached = (compiled, processors)
        if key is not None:
            if len(_compiled) >= _COMPILED_MAX:  # filters make many shapes: start again rather than grow
                _compiled.clear()
            _compiled[key.key] = cached
    return cached[0], cached[1], key


def psycopg_query(stmt: ClauseElement) -> tuple[str, dict[str, Any]]:
    """SQL text (psycopg's paramstyle) and bound values of a SQLAlchemy Core statement, to run on a psycopg
    connection of the read pool.

    Compiled once per statement shape (SQLAlchemy's cache key, as an engine's compiled cache does: the values are
    not part of it), so a request pays for building its statement and extracting its values, not for compiling.
    Expanding ``IN`` lists are rendered for the values given, and the types' bind processors applied."""
    compiled, _, key = _compile(stmt)
    return _query_of(compiled, key)


def _query_of(compiled: SQLCompiler, key: Any) -> tuple[str, dict[str, Any]]:
    params = compiled.construct_params(extracted_parameters=key.bindparams if key is not None else None)
    expanded = compiled.construct_expanded_state(params)
    values = dict(expanded.parameters)
    for name, process in expanded.processors.items():
        if name in values and process is not None:
            values[name] = process(values[name])
    return expanded.statement, values


async def fetch_all_async(conn: psycopg.AsyncConnection[Any], stmt: ClauseElement) -> list[tuple[Any, ...]]:
    """The rows of ``stmt`` (SQLAlchemy Core) on ``conn``, an autocommit connection of the read pool: one
    statement, one round trip (prepared after its first use on that connection, like the searches). Values come
    back as the SQLAlchemy types of the columns say (e.g. arrays of a PostgreSQL enum as lists)."""
    compiled, processors, key = _compile(stmt)
    query, values = _query_of(compiled, key)
    cursor = await conn.execute(query, values)  # type: ignore[arg-type]
    return _processed(await cursor.fetchall(), processors)


def _processed(rows: list[tuple[Any, ...]], processors: RowProcessors) -> list[tuple[Any, ...]]:
    """``rows`` with each column's result processor applied (as is when no column has one)."""
    if not any(processors):
        return rows
    return [tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=False)) for row in rows]


def _row_processor(type_: Any) -> Callable[[Any], Any] | None:
    """The result processor of a column of ``type_``, None where it would return what psycopg gives: an array of
    items without a processor of their own (``text[]``: psycopg already returns a list of str; SQLAlchemy's
    processor would copy it item by item, a tenth of an items page's time in the profile)."""
    if isinstance(type_, ARRAY) and not type_.as_tuple and \
            type_.item_type.dialect_impl(PSYCOPG).result_processor(PSYCOPG, None) is None:
        return None
    return type_.result_processor(PSYCOPG, None)  # type: ignore[no-any-return]


class PrecompiledQuery:
    """A SQLAlchemy Core statement compiled once, whose variable values are the named bind parameters
    ``names`` (``bindparam(name, value, type_=...)``): a request only binds its own values (``params``), with no
    statement to build, no cache key and no compiled-cache lookup. Other bound values of the statement (constants
    of its columns) are taken once, at compile time."""

    def __init__(self, stmt: ClauseElement, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
        # Expanding parameters (a layer's constant ``IN`` list) are rendered now, for their constant values.
        compiled: SQLCompiler = stmt.compile(dialect=PSYCOPG,  # type: ignore[assignment]
                                             compile_kwargs={"render_postcompile": True})
        if set(names) & {bind.key for bind in compiled.post_compile_params}:
            raise ValueError("a precompiled statement's variable values cannot be expanding parameters")
        self.sql: str = compiled.string
        self.row_processors: RowProcessors = tuple(_row_processor(column.type) for column in compiled._result_columns)
        expanded = compiled._post_compile_expanded_state
        # The statement's parameters for the values of its first use (bound in ``_Recorder``'s bindparams).
        constants = dict(expanded.parameters) if expanded is not None else compiled.construct_params()
        processors: dict[str, Any] = dict(expanded.processors) if expanded is not None else \
            dict(compiled._bind_processors)
        self._constants = {name: value if (process := processors.get(name)) is None else process(value)
                           for name, value in constants.items() if name not in names}
        self._binds: tuple[tuple[str, Any], ...] = tuple((name, processors.get(name)) for name in names)

    def params(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The statement's parameters with ``values`` for ``names`` (in that order)."""
        out = dict(self._constants)
        for (name, process), value in zip(self._binds, values, strict=True):
            out[name] = value if process is None else process(value)
        return out


async def fetch_precompiled_async(conn: psycopg.AsyncConnection[Any], query: PrecompiledQuery,
                                  values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` with ``values`` on ``conn`` (a read-pool connection): one statement, one round trip,
    values processed as ``fetch_all_async`` does."""
    cursor = await conn.execute(query.sql, query.params(values))  # type: ignore[arg-type]
    return _processed(await cursor.fetchall(), query.row_processors)
