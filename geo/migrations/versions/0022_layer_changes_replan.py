"""layer changes of facilities and disclosures: the update triggers' comparison of old and new rows is planned per
statement

Revision ID: 0022_layer_changes_replan
Revises: 0021_disclosures
Create Date: 2026-12-06

PL/pgSQL keeps the plan of a query without parameters for the whole session, made for the transition tables of
the trigger's first call. When a session's first update of ``facilities`` touched no row (an import's update of
the changed centres, none on a first import), the planner expected one row in ``old_rows`` and ``new_rows`` and
joined them by a nested loop; the import's next statement (the services refresh of every centre) then compared
every old row with every new one: 9,441 rows, 89 million pairs, 7 minutes (a first import of a Seoul snapshot
took 5-7 minutes instead of 30 s). ``EXECUTE`` plans the comparison at each call, with the real row counts. The
disclosures' update trigger (0021) joins its transition tables the same way and gets the same change.
"""

from __future__ import annotations

from alembic import op

revision = "0022_layer_changes_replan"
down_revision = "0021_disclosures"
branch_labels = None
depends_on = None

# The update branch of 0004_layer_versions, unchanged, run by EXECUTE (see the module docstring).
_CHANGED = """
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
                     UNION SELECT c.new_dong FROM c WHERE c.stats_changed)"""

_FUNCTION = r"""
CREATE OR REPLACE FUNCTION layer_changes_facilities() RETURNS trigger LANGUAGE plpgsql AS $$
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
    %s;
  END IF;
  RETURN NULL;
END $$;
"""


# The update branch of 0021_disclosures, unchanged.
_DISCLOSURES_CHANGED = """
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'disclosures', ST_Envelope(ST_Transform(f.geom_4326, 3857))
      FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN facilities f ON f.id = n.facility_id
     WHERE (o.shown OR n.shown) AND o::text IS DISTINCT FROM n::text"""

_DISCLOSURES_FUNCTION = r"""
CREATE OR REPLACE FUNCTION layer_changes_disclosures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'disclosures', ST_Envelope(ST_Transform(f.geom_4326, 3857))
      FROM new_rows n JOIN facilities f ON f.id = n.facility_id WHERE n.shown;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO layer_changes (layer, env_3857)
    SELECT 'disclosures', ST_Envelope(ST_Transform(f.geom_4326, 3857))
      FROM old_rows o JOIN facilities f ON f.id = o.facility_id WHERE o.shown;
  ELSE
    -- A row that is not shown before or after changes nothing on the map.
    %s;
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(_FUNCTION % ("EXECUTE $q$" + _CHANGED + "$q$"))
    op.execute(_DISCLOSURES_FUNCTION % ("EXECUTE $q$" + _DISCLOSURES_CHANGED + "$q$"))


def downgrade() -> None:
    op.execute(_FUNCTION % _CHANGED)
    op.execute(_DISCLOSURES_FUNCTION % _DISCLOSURES_CHANGED)
