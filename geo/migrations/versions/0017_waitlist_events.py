"""The waitlist log as the source of truth: the private key of per-centre pseudonyms and claim salts, and the
private map of each centre's child pseudonyms back to children (for rebuilding the queue tables from the log).

Both tables are private (never served, never in the public chain). The key is 32 random bytes drawn here
(``gen_random_uuid`` is a strong random source since PostgreSQL 13).

Revision ID: 0017_waitlist_events
Revises: 0016_designations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_waitlist_events"
down_revision = "0016_designations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitlist_secrets",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_waitlist_secrets_one"),
        sa.CheckConstraint("length(secret) >= 32", name="ck_waitlist_secrets_length"),
    )
    op.execute("""INSERT INTO waitlist_secrets (id, secret)
                  VALUES (1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))""")
    op.create_table(
        "waitlist_pseudonyms",
        sa.Column("facility_id", sa.Integer(), sa.ForeignKey("facilities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("pseudonym", sa.String(length=32), primary_key=True),
        sa.Column("child_id", sa.Integer(), sa.ForeignKey("children.id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("facility_id", "child_id", name="uq_waitlist_pseudonyms_child"),
    )
    op.create_index("ix_waitlist_pseudonyms_child_id", "waitlist_pseudonyms", ["child_id"])


def downgrade() -> None:
    op.drop_table("waitlist_pseudonyms")
    op.drop_table("waitlist_secrets")
