"""saved searches with alerts: "tell me when a 1세 place opens within 1 km of home"

Revision ID: 0019_saved_search_alerts
Revises: 0018_layer_changes_notify
Create Date: 2026-12-06

- ``saved_searches``: an owner's circle (centre lon/lat in EPSG:4326, ``radius_m`` 100-5,000), the child's age
  (0-5), an optional service, the channel (sms or email), the messages' language, the opt-in time, optional quiet
  hours (Asia/Seoul wall-clock times; a message falling inside is held until they end), an active flag and the
  unsubscribe time.
- ``saved_search_tokens``: unsubscribe tokens, one per message sent (random; only the SHA-256 is kept).

A vacancy report that raises a centre's free places for an age enqueues one message per matching search in the
report's transaction (``geo.alerts.firing``); the outbox's ``idempotency_key`` is ``alert:<search>:<centre>:<report>``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_saved_search_alerts"
down_revision = "0018_layer_changes_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_searches",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=False),
        sa.Column("place_label", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Integer(), nullable=False),
        sa.Column("child_age", sa.SmallInteger(), nullable=False),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=5), nullable=False),
        sa.Column("lang", sa.String(length=2), server_default="ko", nullable=False),
        sa.Column("opted_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quiet_from", sa.Time(), nullable=True),
        sa.Column("quiet_until", sa.Time(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("radius_m BETWEEN 100 AND 5000", name="ck_saved_searches_radius"),
        sa.CheckConstraint("child_age BETWEEN 0 AND 5", name="ck_saved_searches_age"),
        sa.CheckConstraint("channel IN ('sms', 'email')", name="ck_saved_searches_channel"),
        sa.CheckConstraint("(quiet_from IS NULL) = (quiet_until IS NULL)", name="ck_saved_searches_quiet"),
        sa.ForeignKeyConstraint(["owner_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_saved_searches_owner_user_id", "saved_searches", ["owner_user_id"], unique=False)
    op.create_index("ix_saved_searches_active_age", "saved_searches", ["child_age"], unique=False,
                    postgresql_where=sa.text("active"))
    op.create_table(
        "saved_search_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("saved_search_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["saved_search_id"], ["saved_searches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_saved_search_tokens_saved_search_id", "saved_search_tokens", ["saved_search_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_table("saved_search_tokens")
    op.drop_index("ix_saved_searches_active_age", table_name="saved_searches", postgresql_where=sa.text("active"))
    op.drop_index("ix_saved_searches_owner_user_id", table_name="saved_searches")
    op.drop_table("saved_searches")
