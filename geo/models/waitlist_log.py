"""Tables of the waitlist's public transparency log (migration 0015_waitlist_log): the queue of chain rows not yet
in the log (filled by a trigger on ``waitlist_chain``), the leaves in log order, the stored hashes of every full
subtree, the published checkpoints and the witnesses' cosignatures of them.

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class LogPending(Base):
    """A chain row written but not yet given a log index (the sequencer integrates them in commit order)."""

    __tablename__ = "waitlist_log_pending"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)


class LogLeaf(Base):
    """Leaf ``idx`` of the log: which chain row it is and the RFC 6962 hash of its bytes."""

    __tablename__ = "waitlist_log_leaves"
    __table_args__ = (UniqueConstraint("facility_id", "seq", name="uq_waitlist_log_leaves_chain_row"),)

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    facility_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    integrated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LogHash(Base):
    """The hash of the full subtree ``idx`` at ``level`` (leaves ``idx * 2**level`` to ``(idx + 1) * 2**level``)."""

    __tablename__ = "waitlist_log_hashes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A published checkpoint: tree size, root and the signed note (append-only, one per size)."""

    __tablename__ = "waitlist_log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LogCosignature(Base):
    """A witness's verified cosignature line of a checkpoint (the latest of each witness)."""

    __tablename__ = "waitlist_log_cosignatures"

    size: Mapped[int] = mapped_column(ForeignKey("waitlist_log_checkpoints.size"), primary_key=True)
    witness: Mapped[str] = mapped_column(Text, primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
