"""booking: slot patterns and exceptions, slots, bookings and waiting lists, emergency requests, notification outbox

Revision ID: 0010_booking
Revises: 0006_accounts_vacancy
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The file name gives the position in the chain; the revision id keeps the name it was first written with,
# so that databases already migrated upgrade untouched (tests/geo/test_migrations.py checks the order).
revision = "0010_booking"
down_revision = "0006_accounts_vacancy"
branch_labels = None
depends_on = None

SERVICES = "service IN ('holiday', 'twenty_four_hour', 'extended_hours', 'hourly')"


def upgrade() -> None:
    op.create_table(
        "booking_patterns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=20), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=True),
        sa.Column("on_holidays", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("skip_holidays", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("places_by_age", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(SERVICES, name="ck_booking_patterns_service"),
        sa.CheckConstraint("(weekday IS NULL) = on_holidays", name="ck_booking_patterns_kind"),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_booking_patterns_weekday"),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_booking_patterns_facility_id"), "booking_patterns", ["facility_id"], unique=False)
    op.create_table(
        "booking_pattern_exceptions",
        sa.Column("pattern_id", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["pattern_id"], ["booking_patterns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pattern_id", "on_date"),
    )
    op.create_table(
        "booking_slots",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("pattern_id", sa.Integer(), nullable=True),
        sa.Column("service", sa.String(length=20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("places_by_age", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("cancelled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(SERVICES, name="ck_booking_slots_service"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_booking_slots_range"),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pattern_id"], ["booking_patterns.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("facility_id", "starts_at", "ends_at", "service", name="uq_booking_slots_time"),
    )
    op.create_index("ix_booking_slots_starts_at", "booking_slots", ["starts_at"], unique=False)
    op.create_table(
        "bookings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("slot_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_user_id", sa.Integer(), nullable=False),
        sa.Column("child_age", sa.SmallInteger(), nullable=False),
        sa.Column("child_name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=2), server_default="ko", nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('booked', 'confirmed', 'cancelled', 'waiting')", name="ck_bookings_status"),
        sa.CheckConstraint("child_age BETWEEN 0 AND 5", name="ck_bookings_age"),
        sa.ForeignKeyConstraint(["parent_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["slot_id"], ["booking_slots.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_bookings_parent_user_id"), "bookings", ["parent_user_id"], unique=False)
    op.create_index("ix_bookings_slot_status", "bookings", ["slot_id", "status"], unique=False)
    op.create_table(
        "emergency_requests",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("parent_user_id", sa.Integer(), nullable=False),
        sa.Column("child_age", sa.SmallInteger(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=2), server_default="ko", nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("needed_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needed_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="open", nullable=False),
        sa.Column("accepted_facility_id", sa.Integer(), nullable=True),
        sa.Column("accepted_by_user_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('open', 'accepted', 'cancelled')", name="ck_emergency_requests_status"),
        sa.ForeignKeyConstraint(["accepted_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["accepted_facility_id"], ["facilities.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["parent_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_emergency_requests_parent_user_id"), "emergency_requests", ["parent_user_id"],
                    unique=False)
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_notification_outbox_status"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_notification_outbox_due", "notification_outbox", ["next_attempt_at"], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox",
                  postgresql_where=sa.text("status = 'pending'"))
    op.drop_table("notification_outbox")
    op.drop_index(op.f("ix_emergency_requests_parent_user_id"), table_name="emergency_requests")
    op.drop_table("emergency_requests")
    op.drop_index("ix_bookings_slot_status", table_name="bookings")
    op.drop_index(op.f("ix_bookings_parent_user_id"), table_name="bookings")
    op.drop_table("bookings")
    op.drop_index("ix_booking_slots_starts_at", table_name="booking_slots")
    op.drop_table("booking_slots")
    op.drop_table("booking_pattern_exceptions")
    op.drop_index(op.f("ix_booking_patterns_facility_id"), table_name="booking_patterns")
    op.drop_table("booking_patterns")
