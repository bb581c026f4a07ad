"""Sanctions, their public disclosure (위반사실 공표) and the evaluation grades (평가제) of centres (migration 0021)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class Sanction(Base):
    """An administrative disposition against a centre (시정명령, 운영정지, 폐쇄, 과징금, 보조금 반환명령, ...)."""

    __tablename__ = "sanctions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    violation: Mapped[str] = mapped_column(Text)
    disposition: Mapped[str] = mapped_column(Text)
    representative_name: Mapped[str | None] = mapped_column(Text)
    director_name: Mapped[str | None] = mapped_column(Text)
    amount_won: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[date] = mapped_column(Date)
    final_at: Mapped[date | None] = mapped_column(Date)
    # The inspection finding the sanction follows (geo.inspections), as text: the two packages stay apart.
    finding_ref: Mapped[str | None] = mapped_column(Text)
    authority: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default=text("'officer'"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("final_at IS NULL OR final_at >= decided_at", name="ck_sanctions_final"),
        CheckConstraint("amount_won IS NULL OR amount_won >= 0", name="ck_sanctions_amount"),
        Index("ix_sanctions_facility", "facility_id"),
    )


class Disclosure(Base):
    """The publication of a final sanction from ``published_from`` to ``published_until`` (inclusive)."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    sanction_id: Mapped[int] = mapped_column(ForeignKey("sanctions.id", ondelete="CASCADE"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    published_from: Mapped[date] = mapped_column(Date)
    published_until: Mapped[date] = mapped_column(Date)
    rule: Mapped[str] = mapped_column(Text)
    # Published today (Seoul); kept by geo.disclosure.records.refresh_shown, read by the disclosures layer.
    shown: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("sanction_id", name="uq_disclosures_sanction"),
        CheckConstraint("published_until >= published_from", name="ck_disclosures_period"),
        Index("ix_disclosures_facility", "facility_id"),
    )


class Evaluation(Base):
    """One 평가제 grade (A-D) of a centre on a date."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    grade: Mapped[str] = mapped_column(Text)
    evaluated_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("facility_id", "evaluated_on", name="uq_evaluations_facility_day"),
        CheckConstraint("grade IN ('A', 'B', 'C', 'D')", name="ck_evaluations_grade"),
    )
