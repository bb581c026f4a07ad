"""layer changes announced: every statement that adds rows to ``layer_changes`` sends one ``NOTIFY
dolbom_layer_changes`` naming each changed layer with the bounding box (EPSG:3857) of its changes

Revision ID: 0018_layer_changes_notify
Revises: 0017_waitlist_events
Create Date: 2026-12-06

API processes keep the versions of the tiles they serve in memory and drop exactly those a notification touches
(``tiles/feed.py``), so a cached tile or a 304 needs no database round trip. The payload is small whatever the
statement (one box per layer, well under NOTIFY's 8,000 bytes); PostgreSQL delivers it at commit, and not at all
on rollback.
"""

from __future__ import annotations

from alembic import op

revision = "0018_layer_changes_notify"
down_revision = "0017_waitlist_events"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.execute("""
CREATE FUNCTION layer_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  boxes json;
BEGIN
  SELECT json_object_agg(layer, json_build_array(ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)))
    INTO boxes
    FROM (SELECT layer, ST_Extent(env_3857) AS e FROM new_rows GROUP BY layer) s;
  IF boxes IS NOT NULL THEN
    PERFORM pg_notify('dolbom_layer_changes', json_build_object('layers', boxes)::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER layer_changes_notify AFTER INSERT ON layer_changes REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION layer_changes_notify();
""")


def downgrade() -> None:
    op.execute("DROP TRIGGER layer_changes_notify ON layer_changes")
    op.execute("DROP FUNCTION layer_changes_notify()")
