"""Tables of the admission waitlist (migration 0009_waitlist): children, priority claims, entries, offers, rank
snapshots a parent last looked at, notices, and the per-centre hash chain with its daily heads.

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base

ENTRY_STATUSES = ("waiting", "offered", "admitted", "withdrawn", "dropped", "lapsed")
OFFER_STATUSES = ("open", "accepted", "declined", "expired")


class Child(Base):
    """A child registered by a verified parent; ``public_id`` is the pseudonym used in logs and chains."""

    __tablename__ = "children"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    parent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date] = mapped_column(Date)
    # Already enrolled somewhere: fewer applications allowed (rules.max_applications_if_enrolled).
    enrolled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Claim(Base):
    """A priority category claimed for a child, with its evidence state and who checked it."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(60))
    evidence: Mapped[str] = mapped_column(String(20), server_default="claimed")
    detail: Mapped[str | None] = mapped_column(String(40))  # 형제자매 재원: facility code of the sibling's centre
    verified_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("child_id", "category", name="uq_claims_child_category"),
        CheckConstraint("evidence IN ('claimed', 'verified_centre', 'verified_record', 'rejected')",
                        name="ck_claims_evidence"),
    )


class Entry(Base):
    """An application of a child to a centre for an age class (반) of a 보육연도."""

    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column(SmallInteger)
    age_class: Mapped[int] = mapped_column(SmallInteger)
    # The parent's order of preference among their entries (1 = most wanted), used by the intake round.
    preference: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), server_default="waiting")
    status_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # After the child's admission elsewhere: the entry lapses at this time unless the parent keeps it.
    lapse_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'offered', 'admitted', 'withdrawn', 'dropped', 'lapsed')",
                        name="ck_waitlist_entries_status"),
        CheckConstraint("age_class BETWEEN 0 AND 5", name="ck_waitlist_entries_age_class"),
        # One active entry per child and centre.
        Index("uq_waitlist_entries_active", "child_id", "facility_id", unique=True,
              postgresql_where=text("status IN ('waiting', 'offered')")),
        Index("ix_waitlist_entries_queue", "facility_id", "year", "age_class", "status"),
    )


class Offer(Base):
    """A free place offered to an entry, answered before ``deadline``."""

    __tablename__ = "waitlist_offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    age_class: Mapped[int] = mapped_column(SmallInteger)
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    offered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired')", name="ck_waitlist_offers_status"),
        # One live offer per child at a time.
        Index("uq_waitlist_offers_live_child", "child_id", unique=True, postgresql_where=text("status = 'open'")),
        Index("ix_waitlist_offers_place", "facility_id", "age_class", "status"),
    )


class RankView(Base):
    """The queue as the parent of an entry last saw it (for the reasons of every change since). ``seen_at``: the
    first look at that queue (a look at an unchanged queue writes nothing)."""

    __tablename__ = "waitlist_rank_views"

    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    snapshot: Mapped[list] = mapped_column(JSONB)


class Notice(Base):
    """A message to a parent (an entry dropped at year end, an offer, a lapse)."""

    __tablename__ = "waitlist_notices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    parent_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChainEvent(Base):
    """One link of a centre's waitlist chain (no names or birth dates: pseudonymous ids and a nonce)."""

    __tablename__ = "waitlist_chain"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[dict] = mapped_column(JSONB)
    digest: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChainHead(Base):
    """The published head of a centre's chain at the end of a day."""

    __tablename__ = "waitlist_chain_heads"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class WaitlistSecret(Base):
    """The private key of the public log (migration 0017): per-centre child pseudonyms and claim salts are HMACs
    under it. Never served, never logged."""

    __tablename__ = "waitlist_secrets"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("id = 1", name="ck_waitlist_secrets_one"),
        CheckConstraint("length(secret) >= 32", name="ck_waitlist_secrets_length"),
    )


class Pseudonym(Base):
    """A child's pseudonym in one centre's log (private: maps the log back to the child when rebuilding)."""

    __tablename__ = "waitlist_pseudonyms"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(32), primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"), index=True)

    __table_args__ = (UniqueConstraint("facility_id", "child_id", name="uq_waitlist_pseudonyms_child"),)
