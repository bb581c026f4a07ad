"""planner runs and grid cells

Revision ID: 0005_planner
Revises: 0004_layer_versions
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from geoalchemy2 import Geometry

revision = '0005_planner'
down_revision = "0004_layer_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('planner_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('params_key', sa.String(length=32), nullable=False),
    sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('area_code', sa.String(length=10), nullable=False),
    sa.Column('service', sa.Text(), nullable=False),
    sa.Column('cell_m', sa.Float(), nullable=False),
    sa.Column('catchment_m', sa.Float(), nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('params_key')
    )
    op.create_geospatial_table('planner_cells',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('cell_i', sa.Integer(), nullable=False),
    sa.Column('cell_j', sa.Integer(), nullable=False),
    sa.Column('admin_dong_id', sa.Integer(), nullable=True),
    sa.Column('district_code', sa.String(length=5), nullable=True),
    sa.Column('children', sa.Float(), nullable=False),
    sa.Column('centres', sa.Integer(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.Column('free_places', sa.Integer(), nullable=False),
    sa.Column('children_per_place', sa.Float(), nullable=True),
    sa.Column('desert', sa.Boolean(), nullable=False),
    sa.Column('nearest_m', sa.Float(), nullable=True),
    sa.Column('sfca', sa.Float(), nullable=False),
    sa.Column('e2sfca', sa.Float(), nullable=False),
    sa.Column('places_in_reach', sa.Float(), nullable=False),
    sa.Column('blind_spot', sa.Boolean(), nullable=False),
    sa.Column('blind_rank', sa.Integer(), nullable=True),
    sa.Column('gap_places', sa.Float(), nullable=False),
    sa.Column('geom_4326', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['admin_dong_id'], ['admin_dongs.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['planner_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'cell_i', 'cell_j')
    )
    op.create_geospatial_index('ix_planner_cells_geom_4326', 'planner_cells', ['geom_4326'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_planner_cells_run_rank', 'planner_cells', ['run_id', 'blind_rank'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_planner_cells_run_rank', table_name='planner_cells')
    op.drop_geospatial_index('ix_planner_cells_geom_4326', table_name='planner_cells', postgresql_using='gist', column_name='geom_4326')
    op.drop_geospatial_table('planner_cells')
    op.drop_table('planner_runs')
