"""Test helpers shared by fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back on exit, whatever the test did."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()
