"""어린이집 지도점검 (migration 0020): complaints, inspections with their checklist results, findings (with the
corrective order and the centre's answer) and every state change (``geo.inspections``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class Complaint(Base):
    """A complaint (민원) about a centre."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_complaints_facility", "facility_id", "received_at"),)


class Inspection(Base):
    """A visit planned, made, closed or cancelled, against a checklist version."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(Text)
    planned_for: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    checklist_version: Mapped[int] = mapped_column(Integer)
    checklist_sha256: Mapped[str] = mapped_column(Text)
    visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    visited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('planned', 'visited', 'closed', 'cancelled')", name="ck_inspections_status"),
        Index("ix_inspections_facility", "facility_id", "status"),
    )


class InspectionItem(Base):
    """The result of one checklist item on a visit."""

    __tablename__ = "inspection_items"

    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), primary_key=True)
    item_code: Mapped[str] = mapped_column(Text, primary_key=True)
    result: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("result IN ('compliant', 'violation', 'not_checked')", name="ck_inspection_items_result"),
    )


class Finding(Base):
    """A violation found on a visit, with its corrective order and the centre's answer."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    item_code: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    order_text: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    ordered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer_text: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    close_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('open', 'ordered', 'answered', 'overdue', 'closed')", name="ck_findings_status"),
        Index("ix_findings_facility", "facility_id", "status"),
        Index("ix_findings_inspection", "inspection_id"),
    )


class InspectionTransition(Base):
    """One state change of an inspection or a finding, with actor and time."""

    __tablename__ = "inspection_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(Text)
    from_status: Mapped[str] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint("kind IN ('inspection', 'finding')", name="ck_inspection_transitions_kind"),
        Index("ix_inspection_transitions_entity", "kind", "entity_id"),
    )
