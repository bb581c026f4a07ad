"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from geoalchemy2 import Geometry

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Extensions first: a DATABASE_URL given by the user may point at a bare PostgreSQL with PostGIS installed.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_geospatial_table('districts',
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('sido_name', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_geospatial_index('ix_districts_geom_4326', 'districts', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_districts_name'), 'districts', ['name'], unique=False)
    op.create_table('import_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('source_name', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data_date', sa.Date(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('flagged', sa.Integer(), nullable=False),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_geospatial_table('road_edges',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('network', sa.Text(), nullable=False),
    sa.Column('osm_way_id', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.BigInteger(), nullable=False),
    sa.Column('target', sa.BigInteger(), nullable=False),
    sa.Column('highway', sa.Text(), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('walk_cost_s', sa.Float(), nullable=False),
    sa.Column('walk_reverse_cost_s', sa.Float(), nullable=False),
    sa.Column('drive_cost_s', sa.Float(), nullable=False),
    sa.Column('drive_reverse_cost_s', sa.Float(), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='LINESTRING', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_geospatial_index('ix_road_edges_geom_4326', 'road_edges', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_road_edges_network'), 'road_edges', ['network'], unique=False)
    op.create_index(op.f('ix_road_edges_source'), 'road_edges', ['source'], unique=False)
    op.create_index(op.f('ix_road_edges_target'), 'road_edges', ['target'], unique=False)
    op.create_geospatial_table('road_vertices',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('network', sa.Text(), nullable=False),
    sa.Column('osm_node_id', sa.BigInteger(), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_road_vertices_geog', 'road_vertices', [sa.literal_column('(geom_4326::geography)')], unique=False, postgresql_using='gist')
    op.create_index(op.f('ix_road_vertices_network'), 'road_vertices', ['network'], unique=False)
    op.create_geospatial_table('admin_dongs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mois_code', sa.String(length=10), nullable=True),
    sa.Column('kostat_code', sa.String(length=10), nullable=True),
    sa.Column('district_code', sa.String(length=5), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('population_total', sa.Integer(), nullable=True),
    sa.Column('population_0_5', sa.Integer(), nullable=True),
    sa.Column('population_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('population_source', sa.Text(), nullable=True),
    sa.Column('population_date', sa.Date(), nullable=True),
    sa.Column('geom_4326', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['district_code'], ['districts.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kostat_code'),
    sa.UniqueConstraint('mois_code')
    )
    op.create_index(op.f('ix_admin_dongs_district_code'), 'admin_dongs', ['district_code'], unique=False)
    op.create_geospatial_index('ix_admin_dongs_geom_4326', 'admin_dongs', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_admin_dongs_name'), 'admin_dongs', ['name'], unique=False)
    op.create_geospatial_table('legal_dongs',
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('district_code', sa.String(length=5), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['district_code'], ['districts.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_index(op.f('ix_legal_dongs_district_code'), 'legal_dongs', ['district_code'], unique=False)
    op.create_geospatial_index('ix_legal_dongs_geom_4326', 'legal_dongs', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_legal_dongs_name'), 'legal_dongs', ['name'], unique=False)
    op.create_geospatial_table('facilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('facility_type', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('sido_name', sa.Text(), nullable=True),
    sa.Column('sigungu_name', sa.Text(), nullable=True),
    sa.Column('district_code', sa.String(length=5), nullable=True),
    sa.Column('admin_dong_id', sa.Integer(), nullable=True),
    sa.Column('legal_dong_code', sa.String(length=10), nullable=True),
    sa.Column('postal_code', sa.String(length=5), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('phone', sa.Text(), nullable=True),
    sa.Column('fax', sa.Text(), nullable=True),
    sa.Column('homepage', sa.Text(), nullable=True),
    sa.Column('rooms', sa.Integer(), nullable=True),
    sa.Column('room_area_m2', sa.Float(), nullable=True),
    sa.Column('playgrounds', sa.Integer(), nullable=True),
    sa.Column('cctv_count', sa.Integer(), nullable=True),
    sa.Column('staff_count', sa.Integer(), nullable=True),
    sa.Column('staff_by_role', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('has_bus', sa.Boolean(), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('enrolled', sa.Integer(), nullable=True),
    sa.Column('classes_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('enrolled_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('free_by_age', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('services', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('opening_hours', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('approved_on', sa.Date(), nullable=True),
    sa.Column('suspended_from', sa.Date(), nullable=True),
    sa.Column('suspended_until', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('data_date', sa.Date(), nullable=True),
    sa.Column('geocode_quality', sa.String(length=24), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['admin_dong_id'], ['admin_dongs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_index(op.f('ix_facilities_admin_dong_id'), 'facilities', ['admin_dong_id'], unique=False)
    op.create_index(op.f('ix_facilities_district_code'), 'facilities', ['district_code'], unique=False)
    op.create_index(op.f('ix_facilities_facility_type'), 'facilities', ['facility_type'], unique=False)
    op.create_index('ix_facilities_geog', 'facilities', [sa.literal_column('(geom_4326::geography)')], unique=False, postgresql_using='gist')
    op.create_geospatial_index('ix_facilities_geom_4326', 'facilities', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_facilities_services', 'facilities', ['services'], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_facilities_status'), 'facilities', ['status'], unique=False)
    op.create_table('enrollment_changes',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('facility_id', sa.Integer(), nullable=False),
    sa.Column('import_run_id', sa.Integer(), nullable=True),
    sa.Column('observed_on', sa.Date(), nullable=True),
    sa.Column('previous_data_date', sa.Date(), nullable=True),
    sa.Column('enrolled_before', sa.Integer(), nullable=True),
    sa.Column('enrolled_after', sa.Integer(), nullable=True),
    sa.Column('capacity_before', sa.Integer(), nullable=True),
    sa.Column('capacity_after', sa.Integer(), nullable=True),
    sa.Column('status_before', sa.String(length=12), nullable=True),
    sa.Column('status_after', sa.String(length=12), nullable=True),
    sa.Column('enrolled_by_age_before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('enrolled_by_age_after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facilities.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_run_id'], ['import_runs.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_enrollment_changes_facility_id'), 'enrollment_changes', ['facility_id'], unique=False)
    op.create_index(op.f('ix_enrollment_changes_observed_on'), 'enrollment_changes', ['observed_on'], unique=False)
    # Korean substring search on names and addresses (ILIKE '%fragment%') uses trigram indexes.
    op.execute("CREATE INDEX ix_facilities_name_trgm ON facilities USING gin (name gin_trgm_ops)")
    op.execute("CREATE INDEX ix_facilities_address_trgm ON facilities USING gin (address gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_facilities_address_trgm")
    op.execute("DROP INDEX IF EXISTS ix_facilities_name_trgm")
    op.drop_index(op.f('ix_enrollment_changes_observed_on'), table_name='enrollment_changes')
    op.drop_index(op.f('ix_enrollment_changes_facility_id'), table_name='enrollment_changes')
    op.drop_table('enrollment_changes')
    op.drop_index(op.f('ix_facilities_status'), table_name='facilities')
    op.drop_index('ix_facilities_services', table_name='facilities', postgresql_using='gin')
    op.drop_geospatial_index('ix_facilities_geom_4326', table_name='facilities', postgresql_using='gist', column_name='geom_4326')
    op.drop_index('ix_facilities_geog', table_name='facilities', postgresql_using='gist')
    op.drop_index(op.f('ix_facilities_facility_type'), table_name='facilities')
    op.drop_index(op.f('ix_facilities_district_code'), table_name='facilities')
    op.drop_index(op.f('ix_facilities_admin_dong_id'), table_name='facilities')
    op.drop_geospatial_table('facilities')
    op.drop_index(op.f('ix_legal_dongs_name'), table_name='legal_dongs')
    op.drop_geospatial_index('ix_legal_dongs_geom_4326', table_name='legal_dongs', postgresql_using='gist', column_name='geom_4326')
    op.drop_index(op.f('ix_legal_dongs_district_code'), table_name='legal_dongs')
    op.drop_geospatial_table('legal_dongs')
    op.drop_index(op.f('ix_admin_dongs_name'), table_name='admin_dongs')
    op.drop_geospatial_index('ix_admin_dongs_geom_4326', table_name='admin_dongs', postgresql_using='gist', column_name='geom_4326')
    op.drop_index(op.f('ix_admin_dongs_district_code'), table_name='admin_dongs')
    op.drop_geospatial_table('admin_dongs')
    op.drop_index(op.f('ix_road_vertices_network'), table_name='road_vertices')
    op.drop_index('ix_road_vertices_geog', table_name='road_vertices', postgresql_using='gist')
    op.drop_geospatial_table('road_vertices')
    op.drop_index(op.f('ix_road_edges_target'), table_name='road_edges')
    op.drop_index(op.f('ix_road_edges_source'), table_name='road_edges')
    op.drop_index(op.f('ix_road_edges_network'), table_name='road_edges')
    op.drop_geospatial_index('ix_road_edges_geom_4326', table_name='road_edges', postgresql_using='gist', column_name='geom_4326')
    op.drop_geospatial_table('road_edges')
    op.drop_table('import_runs')
    op.drop_index(op.f('ix_districts_name'), table_name='districts')
    op.drop_geospatial_index('ix_districts_geom_4326', table_name='districts', postgresql_using='gist', column_name='geom_4326')
    op.drop_geospatial_table('districts')
