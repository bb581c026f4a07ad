"""ingest history: class counts in the history, snapshot coverage and bounded reports of import runs

Revision ID: 0003_ingest_history
Revises: 0007_service_names
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_ingest_history"
down_revision = "0007_service_names"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("enrollment_changes", sa.Column("classes_by_age_before", postgresql.JSONB(), nullable=True))
    op.add_column("enrollment_changes", sa.Column("classes_by_age_after", postgresql.JSONB(), nullable=True))
    op.add_column("import_runs", sa.Column("snapshot", sa.String(length=8), nullable=True))
    op.add_column("import_runs", sa.Column("coverage", postgresql.ARRAY(sa.Text()), nullable=True))
    op.add_column("import_runs", sa.Column("issue_counts", postgresql.JSONB(), nullable=True))
    op.add_column("import_runs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("import_runs", "finished_at")
    op.drop_column("import_runs", "issue_counts")
    op.drop_column("import_runs", "coverage")
    op.drop_column("import_runs", "snapshot")
    op.drop_column("enrollment_changes", "classes_by_age_after")
    op.drop_column("enrollment_changes", "classes_by_age_before")
