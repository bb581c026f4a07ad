"""Database access: the SQLAlchemy 2 engine (writes, ORM, migrations) and psycopg 3 connections for reads.

Search statements are ``psycopg.sql`` compositions run on the driver connection: ``driver_connection`` finds it
under a SQLAlchemy ``Connection`` or ``Session`` (the same transaction) and ``make_read_pool`` opens an async
psycopg pool for the API's read path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, TextClause, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings

Conn: TypeAlias = Connection | Session | psycopg.Connection[Any]


def make_engine(url: str | None = None, *, settings: Settings | None = None, **kwargs: Any) -> Engine:
    """Engine for ``url``, or for ``settings``' database when no URL is given (one of them is required). No
    pre-ping per checkout: a connection that died is replaced by the pool on the error, and the API answers 503
    meanwhile."""
    if url is None:
        if settings is None:
            raise ValueError("make_engine needs a url or settings")
        url = settings.effective_database_url
    return create_engine(url, **kwargs)


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


def make_read_pool(settings: Settings, *, min_size: int = 2, max_size: int = 10, url: str | None = None,
                   check: bool = False) -> AsyncConnectionPool:
    """An async psycopg pool for reads (not opened; ``await pool.open()``) on ``url`` (default: the configured
    database). Connections are autocommit: every read is one statement, so no BEGIN/ROLLBACK round trips;
    statements are prepared after their first use and always planned with their values (``READ_SESSION_SETUP``).
    ``check``: test each connection on checkout (one empty round trip), for replica pools whose server may have
    gone since the connection was last used, so that the caller can fall back before running its query."""
    return AsyncConnectionPool(
        as_libpq_url(url) if url else libpq_url(settings), min_size=min_size, max_size=max_size, open=False,
        kwargs={"autocommit": True, "prepare_threshold": 1}, configure=_configure_read_connection,
        check=AsyncConnectionPool.check_connection if check else None, timeout=settings.db_timeout_s,
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


def make_async_engine(url: str | None = None, *, settings: Settings | None = None, **kwargs: Any) -> AsyncEngine:
    """Async engine (psycopg 3) for ``url``, or for ``settings``' database; no pre-ping per checkout."""
    if url is None:
        if settings is None:
            raise ValueError("make_async_engine needs a url or settings")
        url = settings.effective_database_url
    return create_async_engine(url, **kwargs)
