"""The stored first responses of creating requests sent with an ``Idempotency-Key`` (migration 0011).

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class IdempotencyKey(Base):
    """One key of one caller: the request it was first used for (method, path, SHA-256 of the body) and the
    response that request got, written in the same transaction as the request's own writes."""

    __tablename__ = "idempotency_keys"

    # ``user:<id>`` for an authenticated caller, ``anonymous`` for sign-up.
    caller: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    response_headers: Mapped[list[Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
