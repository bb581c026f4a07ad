"""layer versions: every change to a layer table records the area it touches (EPSG:3857 envelope)

Revision ID: 0004_layer_versions
Revises: 0003_ingest_history
Create Date: 2026-11-25

Statement-level triggers with transition tables on facilities, districts and admin_dongs append one row per
changed feature to ``layer_changes`` (layer id, envelope in EPSG:3857, sequence). Tile and item caches derive
their version from the rows that intersect a tile, so any writer (an import, a vacancy update) invalidates
exactly the tiles it touches without knowing about tiles. A facility counts for its 구 and 행정동 statistics
when its capacity, status or area changes; a 행정동's population counts for its 구.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = '0004_layer_versions'
down_revision = "0003_ingest_history"
branch_labels = None
depends_on = None

_FUNCTIONS = r"""
CREATE FUNCTION layer_changes_facilities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'facilities', ST_Envelope(ST_Transform(n.geom_4326, 3857)) FROM new_rows n
    UNION ALL
    SELECT 'districts', ST_Envelope(ST_Transform(d.geom_4326, 3857))
      FROM districts d WHERE d.code IN (SELECT n.district_code FROM new_rows n)
    UNION ALL
    SELECT 'admin_dongs', ST_Envelope(ST_Transform(a.geom_4326, 3857))
      FROM admin_dongs a WHERE a.id IN (SELECT n.admin_dong_id FROM new_rows n);
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'facilities', ST_Envelope(ST_Transform(o.geom_4326, 3857)) FROM old_rows o
    UNION ALL
    SELECT 'districts', ST_Envelope(ST_Transform(d.geom_4326, 3857))
      FROM districts d WHERE d.code IN (SELECT o.district_code FROM old_rows o)
    UNION ALL
    SELECT 'admin_dongs', ST_Envelope(ST_Transform(a.geom_4326, 3857))
      FROM admin_dongs a WHERE a.id IN (SELECT o.admin_dong_id FROM old_rows o);
  ELSE
    -- Rows rewritten with identical values (a re-import of an unchanged centre) touch nothing.
    WITH c AS (
      SELECT o.geom_4326 AS old_geom, n.geom_4326 AS new_geom,
             (o.capacity, o.status, o.district_code, o.admin_dong_id)
               IS DISTINCT FROM (n.capacity, n.status, n.district_code, n.admin_dong_id) AS stats_changed,
             o.district_code AS old_district, n.district_code AS new_district,
             o.admin_dong_id AS old_dong, n.admin_dong_id AS new_dong
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE o::text IS DISTINCT FROM n::text
    )
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'facilities', ST_Envelope(ST_Transform(c.old_geom, 3857)) FROM c
    UNION ALL
    SELECT 'facilities', ST_Envelope(ST_Transform(c.new_geom, 3857)) FROM c
      WHERE NOT ST_Equals(c.old_geom, c.new_geom)
    UNION ALL
    SELECT 'districts', ST_Envelope(ST_Transform(d.geom_4326, 3857)) FROM districts d
      WHERE d.code IN (SELECT c.old_district FROM c WHERE c.stats_changed
                       UNION SELECT c.new_district FROM c WHERE c.stats_changed)
    UNION ALL
    SELECT 'admin_dongs', ST_Envelope(ST_Transform(a.geom_4326, 3857)) FROM admin_dongs a
      WHERE a.id IN (SELECT c.old_dong FROM c WHERE c.stats_changed
                     UNION SELECT c.new_dong FROM c WHERE c.stats_changed);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION layer_changes_districts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'districts', ST_Envelope(ST_Transform(n.geom_4326, 3857)) FROM new_rows n;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'districts', ST_Envelope(ST_Transform(o.geom_4326, 3857)) FROM old_rows o;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION layer_changes_admin_dongs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'admin_dongs', ST_Envelope(ST_Transform(n.geom_4326, 3857)) FROM new_rows n
    UNION ALL
    SELECT 'districts', ST_Envelope(ST_Transform(d.geom_4326, 3857))
      FROM districts d WHERE d.code IN (SELECT n.district_code FROM new_rows n);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'admin_dongs', ST_Envelope(ST_Transform(o.geom_4326, 3857)) FROM old_rows o
    UNION ALL
    SELECT 'districts', ST_Envelope(ST_Transform(d.geom_4326, 3857))
      FROM districts d WHERE d.code IN (SELECT o.district_code FROM old_rows o);
  END IF;
  RETURN NULL;
END $$;

-- TRUNCATE has no transition tables: the whole world changed for the layers the table feeds.
CREATE FUNCTION layer_changes_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO layer_changes (layer, env_3857)
  SELECT unnest(TG_ARGV), ST_MakeEnvelope(-20037508.34, -20037508.34, 20037508.34, 20037508.34, 3857);
  RETURN NULL;
END $$;
"""

_TRIGGERS = {
    "facilities": ("layer_changes_facilities", "'facilities', 'districts', 'admin_dongs'"),
    "districts": ("layer_changes_districts", "'districts'"),
    "admin_dongs": ("layer_changes_admin_dongs", "'admin_dongs', 'districts'"),
}


def upgrade() -> None:
    op.create_geospatial_table('layer_changes',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('layer', sa.Text(), nullable=False),
    sa.Column('env_3857', Geometry(geometry_type='GEOMETRY', srid=3857, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_geospatial_index('ix_layer_changes_env_3857', 'layer_changes', ['env_3857'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_layer_changes_layer'), 'layer_changes', ['layer'], unique=False)
    op.execute(_FUNCTIONS)
    for table, (function, layers) in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {table}_layer_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_upd AFTER UPDATE ON {table} "
                   f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_layer_trunc AFTER TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION layer_changes_truncate({layers})")
    # Seed: the rows already present count as one change each, so versions start consistent.
    op.execute("INSERT INTO layer_changes (layer, env_3857) "
               "SELECT 'facilities', ST_Envelope(ST_Transform(geom_4326, 3857)) FROM facilities "
               "UNION ALL SELECT 'districts', ST_Envelope(ST_Transform(geom_4326, 3857)) FROM districts "
               "UNION ALL SELECT 'admin_dongs', ST_Envelope(ST_Transform(geom_4326, 3857)) FROM admin_dongs")


def downgrade() -> None:
    for table in _TRIGGERS:
        for suffix in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_layer_{suffix} ON {table}")
    for function in ("layer_changes_facilities", "layer_changes_districts", "layer_changes_admin_dongs",
                     "layer_changes_truncate"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_geospatial_index('ix_layer_changes_env_3857', table_name='layer_changes', postgresql_using='gist', column_name='env_3857')
    op.drop_index(op.f('ix_layer_changes_layer'), table_name='layer_changes')
    op.drop_geospatial_table('layer_changes')
