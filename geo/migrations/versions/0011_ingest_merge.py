"""Ingest merge rules: vacancy_conflicts (a live report kept over an older official snapshot, both values)

Revision ID: 0011_ingest_merge
Revises: 0008_integrate
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_ingest_merge"
down_revision = "0008_integrate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vacancy_conflicts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("import_run_id", sa.Integer(), nullable=True),
        sa.Column("vacancy_report_id", sa.BigInteger(), nullable=True),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("snapshot_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("live_value", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("snapshot_date", sa.Date(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["import_run_id"], ["import_runs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["vacancy_report_id"], ["vacancy_reports.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vacancy_conflicts_facility_id", "vacancy_conflicts", ["facility_id"])


def downgrade() -> None:
    op.drop_index("ix_vacancy_conflicts_facility_id", table_name="vacancy_conflicts")
    op.drop_table("vacancy_conflicts")
