"""Ingest merge rules: vacancy_conflicts (a live report kept over an older official snapshot, both values);
facility_observations (what each snapshot said of each centre, from which status and history are derived),
backfilled from the current rows and the history; facilities.location_approximate and location_offset_m
(approximate for centres placed at their 법정동/시군구; re-import to apply the distance limit)

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


    op.create_table(
        "facility_observations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=True),
        sa.Column("import_run_id", sa.Integer(), nullable=True),
        sa.Column("sido_name", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=True),
        sa.Column("enrolled", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("enrolled_by_age", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("classes_by_age", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["import_run_id"], ["import_runs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("facility_id", "source", "snapshot_date", name="uq_facility_observations_snapshot"),
    )
    op.add_column("facilities", sa.Column("location_approximate", sa.Boolean(), server_default=sa.text("false"),
                                          nullable=False))
    op.add_column("facilities", sa.Column("location_offset_m", sa.Float(), nullable=True))
    op.execute("UPDATE facilities SET location_approximate = true "
               "WHERE geocode_quality IN ('legal_dong_centroid', 'district_centroid')")
    # Backfill: the current row of each listed centre, then the states its history names (the current row wins).
    columns = "facility_id, source, snapshot_date, data_date, sido_name, status, enrolled, capacity, " \
              "enrolled_by_age, classes_by_age"
    op.execute(f"""
        INSERT INTO facility_observations ({columns})
        SELECT f.id, coalesce(f.source, ''), f.data_date, f.data_date, f.sido_name, f.status, f.enrolled, f.capacity,
               f.enrolled_by_age, f.classes_by_age
        FROM facilities f WHERE f.data_date IS NOT NULL AND f.status <> 'unlisted'
        ON CONFLICT DO NOTHING
    """)  # noqa: S608 (constants of this migration)
    for when, date_column in (("after", "observed_on"), ("before", "previous_data_date")):
        op.execute(f"""
            INSERT INTO facility_observations ({columns})
            SELECT e.facility_id, coalesce(f.source, ''), e.{date_column}, e.{date_column}, f.sido_name,
                   e.status_{when}, e.enrolled_{when}, e.capacity_{when}, e.enrolled_by_age_{when},
                   e.classes_by_age_{when}
            FROM enrollment_changes e JOIN facilities f ON f.id = e.facility_id
            WHERE e.{date_column} IS NOT NULL AND e.status_{when} <> 'unlisted'
            ORDER BY e.id DESC
            ON CONFLICT DO NOTHING
        """)  # noqa: S608 (constants of this migration)


def downgrade() -> None:
    op.drop_column("facilities", "location_offset_m")
    op.drop_column("facilities", "location_approximate")
    op.drop_table("facility_observations")
    op.drop_index("ix_vacancy_conflicts_facility_id", table_name="vacancy_conflicts")
    op.drop_table("vacancy_conflicts")
