"""What the API's read pool sends to PostgreSQL: every statement executed on a psycopg async cursor, with whether
its connection was in autocommit (then psycopg sends no BEGIN before it and no ROLLBACK after it: one statement is
one round trip)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from geo.db import READ_SESSION_SETUP


@dataclass(frozen=True)
class Sent:
    """One statement sent by an async psycopg cursor."""

    sql: str
    autocommit: bool


@contextmanager
def recording_async_statements() -> Iterator[list[Sent]]:
    """Record the statements of every async psycopg cursor in the process while the block lasts (the app's
    TestClient runs it in another thread of this process). A read-pool connection's one-time session setup
    (``READ_SESSION_SETUP``, when the pool opens a connection) and LISTEN are not reads: left out."""
    sent: list[Sent] = []
    original = psycopg.AsyncCursor.execute

    async def execute(self: psycopg.AsyncCursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else (
            query.decode() if isinstance(query, bytes) else query.as_string(self.connection))
        if text != READ_SESSION_SETUP and not text.lstrip().upper().startswith("LISTEN"):
            sent.append(Sent(text, self.connection.autocommit))
        return await original(self, query, params, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", execute)
        yield sent
