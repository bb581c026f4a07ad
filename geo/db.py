"""Engine and session helpers (SQLAlchemy 2 + psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings, get_settings


def make_engine(url: str | None = None, *, settings: Settings | None = None, **kwargs: object) -> Engine:
    """Engine for ``url`` (default: the configured database); pool pre-ping on."""
    settings = settings or get_settings()
    return create_engine(url or settings.effective_database_url, pool_pre_ping=True, **kwargs)  # type: ignore[arg-type]


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


def make_async_engine(url: str | None = None, *, settings: Settings | None = None, **kwargs: object) -> AsyncEngine:
    """Async engine (psycopg 3) for ``url`` (default: the configured database); no pre-ping per checkout."""
    settings = settings or get_settings()
    return create_async_engine(url or settings.effective_database_url, **kwargs)  # type: ignore[arg-type]
