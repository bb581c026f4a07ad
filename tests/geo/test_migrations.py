"""The models declare the whole schema: autogenerate finds no difference with the migrated database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine

from geo.models import Base
from geo.ops.migrate import MIGRATIONS_DIR, alembic_config


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


def test_migration_files_sort_in_chain_order() -> None:
    """Listing geo/migrations/versions/ shows the migrations in the order they run (one chain, no branch)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    chain = [Path(script.path).name for script in reversed(list(scripts.walk_revisions()))]
    files = sorted(path.name for path in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert chain == files
    assert [name[:4] for name in files] == [f"{n:04d}" for n in range(1, len(files) + 1)]
