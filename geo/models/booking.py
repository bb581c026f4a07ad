"""Tables of holiday/night/24-hour/hourly care booking (migration 0010_booking): slot patterns and their
exceptions, slots, bookings with their waiting lists, emergency requests and the notification outbox.

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base

BOOKING_SERVICES_SQL = "('holiday', 'twenty_four_hour', 'extended_hours', 'hourly')"


class SlotPattern(Base):
    """A recurring publication: every ``weekday`` (0 = Monday) or every public holiday, a time range, places by age.

    ``skip_holidays`` leaves out the public holidays of the Korean calendar (weekday patterns only).
    """

    __tablename__ = "booking_patterns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(20))
    weekday: Mapped[int | None] = mapped_column(SmallInteger)
    on_holidays: Mapped[bool] = mapped_column(Boolean, server_default="false")
    skip_holidays: Mapped[bool] = mapped_column(Boolean, server_default="false")
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    places_by_age: Mapped[dict] = mapped_column(JSONB)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"service IN {BOOKING_SERVICES_SQL}", name="ck_booking_patterns_service"),
        CheckConstraint("(weekday IS NULL) = on_holidays", name="ck_booking_patterns_kind"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_booking_patterns_weekday"),
    )


class SlotPatternException(Base):
    """A day on which a pattern publishes nothing (the centre is closed that day)."""

    __tablename__ = "booking_pattern_exceptions"

    pattern_id: Mapped[int] = mapped_column(ForeignKey("booking_patterns.id", ondelete="CASCADE"), primary_key=True)
    on_date: Mapped[date] = mapped_column(Date, primary_key=True)


class Slot(Base):
    """A bookable time range at a centre with places by age (``{"2": 3}``: three places for 만2세)."""

    __tablename__ = "booking_slots"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    pattern_id: Mapped[int | None] = mapped_column(ForeignKey("booking_patterns.id", ondelete="SET NULL"))
    service: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    places_by_age: Mapped[dict] = mapped_column(JSONB)
    cancelled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"service IN {BOOKING_SERVICES_SQL}", name="ck_booking_slots_service"),
        CheckConstraint("ends_at > starts_at", name="ck_booking_slots_range"),
        UniqueConstraint("facility_id", "starts_at", "ends_at", "service", name="uq_booking_slots_time"),
        Index("ix_booking_slots_starts_at", "starts_at"),
    )


class Booking(Base):
    """A parent's booking of a slot for one child: ``booked`` → ``confirmed`` (by staff) or ``cancelled``;
    ``waiting`` entries are promoted in ``id`` order when a place frees up."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("booking_slots.id", ondelete="CASCADE"))
    parent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    child_age: Mapped[int] = mapped_column(SmallInteger)
    child_name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(2), server_default="ko")
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('booked', 'confirmed', 'cancelled', 'waiting')", name="ck_bookings_status"),
        CheckConstraint("child_age BETWEEN 0 AND 5", name="ck_bookings_age"),
        Index("ix_bookings_slot_status", "slot_id", "status"),
    )


class EmergencyRequest(Base):
    """"Tonight, near here, age 2": open until one nearby centre accepts it (first come)."""

    __tablename__ = "emergency_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    parent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    child_age: Mapped[int] = mapped_column(SmallInteger)
    phone: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(2), server_default="ko")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    needed_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    needed_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    accepted_facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id", ondelete="SET NULL"))
    accepted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'cancelled')", name="ck_emergency_requests_status"),
    )


class Notification(Base):
    """An outbox row written in the transaction of the change it reports; ``idempotency_key`` is sent to the
    provider so that a message is delivered once even when a worker dies between sending and marking it sent."""

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    recipient: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(2))
    template: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_notification_outbox_status"),
        Index("ix_notification_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )
