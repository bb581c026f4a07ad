"""24-hour service stored under its full name (twenty_four_hour instead of 24h)

Revision ID: 0007_service_names
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

# The file name gives the position in the chain; the revision id keeps the name it was first written with,
# so that databases already migrated upgrade untouched (tests/geo/test_migrations.py checks the order).
revision = "0007_service_names"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE facilities SET services = array_replace(services, '24h', 'twenty_four_hour') "
               "WHERE services @> ARRAY['24h']")


def downgrade() -> None:
    op.execute("UPDATE facilities SET services = array_replace(services, 'twenty_four_hour', '24h') "
               "WHERE services @> ARRAY['twenty_four_hour']")
