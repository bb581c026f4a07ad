"""Alembic environment: the URL comes from the caller's config or the dolbom settings."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine

from geo.models import Base
from geo.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().direct_database_url


def run_migrations_online() -> None:
    """Run migrations on a live connection (the only mode dolbom uses)."""
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
