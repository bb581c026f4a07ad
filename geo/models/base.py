"""The declarative base every dolbom table is declared on (one ``Base.metadata`` for Alembic)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every dolbom table."""
