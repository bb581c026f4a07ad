"""Saturday hours only where a centre offers them: stored opening_hours lose "sat" unless the centre's services
include 토요보육 (saturday), 휴일보육 (holiday) or 24시간 (twenty_four_hour), as ``geo.domain.opening_hours`` now
computes them.

Revision ID: 0014_saturday_hours
Revises: 0013_claim_detail
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014_saturday_hours"
down_revision = "0013_claim_detail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        UPDATE facilities SET opening_hours = opening_hours - 'sat'
        WHERE opening_hours ? 'sat'
          AND NOT (services && ARRAY['saturday', 'holiday', 'twenty_four_hour']::text[])
    """)


def downgrade() -> None:
    op.execute("""
        UPDATE facilities SET opening_hours = opening_hours || '{"sat": [["07:30", "15:30"]]}'::jsonb
        WHERE opening_hours IS NOT NULL AND NOT opening_hours ? 'sat'
    """)
