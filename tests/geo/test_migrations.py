"""The models declare the whole schema: autogenerate finds no difference with the migrated database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine

from geo.models import Base


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_object": alembic_helpers.include_object, "compare_type": True,
        })
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ (alembic check would fail): {diff}"


def test_a_drift_is_detected(engine: Engine) -> None:
    """The check can fail: an index dropped inside a rolled-back transaction shows up as a difference."""
    with engine.connect() as conn:
        trans = conn.begin()
        conn.exec_driver_sql("DROP INDEX ix_facilities_name_trgm")
        context = MigrationContext.configure(conn, opts={"include_object": alembic_helpers.include_object})
        diff = compare_metadata(context, Base.metadata)
        trans.rollback()
    assert any(d[0] == "add_index" and d[1].name == "ix_facilities_name_trgm" for d in diff), diff
