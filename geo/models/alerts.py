"""Tables of saved searches with vacancy alerts and their unsubscribe tokens (migration 0019).

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class SavedSearch(Base):
    """"Tell me when a place for age ``child_age`` opens within ``radius_m`` of (lon, lat)" (EPSG:4326), by SMS
    or e-mail; quiet hours are Asia/Seoul wall-clock times (a message due inside them waits until they end)."""

    __tablename__ = "saved_searches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    place_label: Mapped[str] = mapped_column(Text)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[int] = mapped_column(Integer)
    child_age: Mapped[int] = mapped_column(SmallInteger)
    service: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(5))
    lang: Mapped[str] = mapped_column(String(2), server_default="ko")
    opted_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    quiet_from: Mapped[time | None] = mapped_column(Time)
    quiet_until: Mapped[time | None] = mapped_column(Time)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("radius_m BETWEEN 100 AND 5000", name="ck_saved_searches_radius"),
        CheckConstraint("child_age BETWEEN 0 AND 5", name="ck_saved_searches_age"),
        CheckConstraint("channel IN ('sms', 'email')", name="ck_saved_searches_channel"),
        CheckConstraint("(quiet_from IS NULL) = (quiet_until IS NULL)", name="ck_saved_searches_quiet"),
        Index("ix_saved_searches_active_age", "child_age", postgresql_where=text("active")),
    )


class SavedSearchToken(Base):
    """An unsubscribe token of a saved search (one per message; only its SHA-256 is stored)."""

    __tablename__ = "saved_search_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    saved_search_id: Mapped[int] = mapped_column(ForeignKey("saved_searches.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
