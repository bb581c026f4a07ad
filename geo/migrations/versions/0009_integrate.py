"""Tile versions for the blind-spots layer: planner_cells and planner_runs record their changes in layer_changes

Revision ID: 0008_integrate
Revises: 0009_waitlist
Create Date: 2026-11-25

The ``blind_spots`` layer (geo.layers.blind_spots) serves the blind-spot cells of the latest run per service.
A change to blind-spot cells records their envelopes; a run added, removed or re-dated changes which run is the
latest of its service, so it records the envelopes of the blind spots of every run of that service.
"""

from __future__ import annotations

from alembic import op

# The file name gives the position in the chain; the revision id keeps the name it was first written with,
# so that databases already migrated upgrade untouched (tests/geo/test_migrations.py checks the order).
revision = "0008_integrate"
down_revision = "0009_waitlist"
branch_labels = None
depends_on = None

_FUNCTIONS = r"""
CREATE FUNCTION layer_changes_planner_cells() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'blind_spots', ST_Envelope(ST_Transform(n.geom_4326, 3857)) FROM new_rows n WHERE n.blind_spot;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'blind_spots', ST_Envelope(ST_Transform(o.geom_4326, 3857)) FROM old_rows o WHERE o.blind_spot;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION layer_changes_planner_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Which run of a service is the latest (the one served) may have changed: its blind spots and those of the
  -- other runs of the service appear or disappear.
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'blind_spots', ST_Envelope(ST_Transform(c.geom_4326, 3857))
    FROM planner_cells c JOIN planner_runs r ON r.id = c.run_id
    WHERE c.blind_spot AND r.service IN (SELECT n.service FROM new_rows n);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'blind_spots', ST_Envelope(ST_Transform(c.geom_4326, 3857))
    FROM planner_cells c JOIN planner_runs r ON r.id = c.run_id
    WHERE c.blind_spot AND r.service IN (SELECT o.service FROM old_rows o);
  END IF;
  RETURN NULL;
END $$;
"""

_TABLES = {"planner_cells": "layer_changes_planner_cells", "planner_runs": "layer_changes_planner_runs"}


def upgrade() -> None:
    op.execute(_FUNCTIONS)
    for table, function in _TABLES.items():
        op.execute(f"CREATE TRIGGER {table}_layer_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_upd AFTER UPDATE ON {table} "
                   f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_trunc AFTER TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION layer_changes_truncate('blind_spots')")
    op.execute("INSERT INTO layer_changes (layer, env_3857) "
               "SELECT 'blind_spots', ST_Envelope(ST_Transform(geom_4326, 3857)) FROM planner_cells WHERE blind_spot")


def downgrade() -> None:
    for table in _TABLES:
        for suffix in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_layer_{suffix} ON {table}")
    for function in _TABLES.values():
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute("DELETE FROM layer_changes WHERE layer = 'blind_spots'")
