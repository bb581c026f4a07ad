"""admission waitlist: children, claims, entries, offers, rank views, notices, per-centre hash chain and heads

Revision ID: 0009_waitlist
Revises: 0010_booking
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The file name gives the position in the chain; the revision id keeps the name it was first written with,
# so that databases already migrated upgrade untouched (tests/geo/test_migrations.py checks the order).
revision = "0009_waitlist"
down_revision = "0010_booking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "children",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("parent_user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("enrolled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["parent_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index(op.f("ix_children_parent_user_id"), "children", ["parent_user_id"], unique=False)
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("evidence", sa.String(length=20), server_default="claimed", nullable=False),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("evidence IN ('claimed', 'verified_centre', 'verified_record', 'rejected')",
                           name="ck_claims_evidence"),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["verified_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("child_id", "category", name="uq_claims_child_category"),
    )
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("age_class", sa.SmallInteger(), nullable=False),
        sa.Column("preference", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="waiting", nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("lapse_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('waiting', 'offered', 'admitted', 'withdrawn', 'dropped', 'lapsed')",
                           name="ck_waitlist_entries_status"),
        sa.CheckConstraint("age_class BETWEEN 0 AND 5", name="ck_waitlist_entries_age_class"),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index(op.f("ix_waitlist_entries_child_id"), "waitlist_entries", ["child_id"], unique=False)
    op.create_index("uq_waitlist_entries_active", "waitlist_entries", ["child_id", "facility_id"], unique=True,
                    postgresql_where=sa.text("status IN ('waiting', 'offered')"))
    op.create_index("ix_waitlist_entries_queue", "waitlist_entries", ["facility_id", "year", "age_class", "status"],
                    unique=False)
    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("age_class", sa.SmallInteger(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="open", nullable=False),
        sa.Column("offered_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired')", name="ck_waitlist_offers_status"),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["waitlist_entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["offered_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_waitlist_offers_entry_id"), "waitlist_offers", ["entry_id"], unique=False)
    op.create_index("uq_waitlist_offers_live_child", "waitlist_offers", ["child_id"], unique=True,
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_waitlist_offers_place", "waitlist_offers", ["facility_id", "age_class", "status"],
                    unique=False)
    op.create_table(
        "waitlist_rank_views",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["waitlist_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_table(
        "waitlist_notices",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("parent_user_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["waitlist_entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["parent_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_waitlist_notices_parent_user_id"), "waitlist_notices", ["parent_user_id"],
                    unique=False)
    op.create_table(
        "waitlist_chain",
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("facility_id", "seq"),
    )
    op.create_table(
        "waitlist_chain_heads",
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("facility_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("waitlist_chain_heads")
    op.drop_table("waitlist_chain")
    op.drop_index(op.f("ix_waitlist_notices_parent_user_id"), table_name="waitlist_notices")
    op.drop_table("waitlist_notices")
    op.drop_table("waitlist_rank_views")
    op.drop_index("ix_waitlist_offers_place", table_name="waitlist_offers")
    op.drop_index("uq_waitlist_offers_live_child", table_name="waitlist_offers")
    op.drop_index(op.f("ix_waitlist_offers_entry_id"), table_name="waitlist_offers")
    op.drop_table("waitlist_offers")
    op.drop_index("ix_waitlist_entries_queue", table_name="waitlist_entries")
    op.drop_index("uq_waitlist_entries_active", table_name="waitlist_entries")
    op.drop_index(op.f("ix_waitlist_entries_child_id"), table_name="waitlist_entries")
    op.drop_table("waitlist_entries")
    op.drop_table("claims")
    op.drop_index(op.f("ix_children_parent_user_id"), table_name="children")
    op.drop_table("children")
