"""Abuse limits: rate_limits (fixed-window counters shared by every worker process, keys hashed),
users.email_confirmed_at (existing accounts, and accounts inserted without it, count as confirmed; sign-up
sets it to NULL until the mail is confirmed) and account_mail_tokens (single-use e-mail confirmation and
password-reset tokens, stored as SHA-256).

Revision ID: 0012_abuse_limits
Revises: 0011_ingest_merge
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_abuse_limits"
down_revision = "0011_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key_hash", "window_start"),
    )
    op.add_column("users", sa.Column("email_confirmed_at", sa.DateTime(timezone=True),
                                     server_default=sa.text("now()"), nullable=True))
    op.create_table(
        "account_mail_tokens",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('confirm_email', 'password_reset')", name="ck_account_mail_tokens_purpose"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_account_mail_tokens_user_id", "account_mail_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_account_mail_tokens_user_id", table_name="account_mail_tokens")
    op.drop_table("account_mail_tokens")
    op.drop_column("users", "email_confirmed_at")
    op.drop_table("rate_limits")
