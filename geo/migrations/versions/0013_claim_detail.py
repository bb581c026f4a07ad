"""Priority claims carry a detail: for 형제자매 재원 the facility code of the centre where the sibling is enrolled
(the claim counts only there).

Revision ID: 0013_claim_detail
Revises: 0012_abuse_limits
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_claim_detail"
down_revision = "0012_abuse_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("detail", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("claims", "detail")
