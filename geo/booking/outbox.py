"""The notification outbox: rows written in the transaction of the change they report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, text

from geo.booking.templates import render


def enqueue(conn: Connection, *, key: str, recipient: str, lang: str, template: str, **params: object) -> int | None:
    """Queue one message (in ``conn``'s transaction); a second message with the same ``key`` is ignored.

    Returns the outbox id, or None when ``key`` was already queued.
    """
    return enqueue_held(conn, key=key, recipient=recipient, lang=lang, template=template, params=params)


def enqueue_held(conn: Connection, *, key: str, recipient: str, lang: str, template: str,
                 params: Mapping[str, object], not_before: datetime | None = None) -> int | None:
    """As ``enqueue``, held until ``not_before`` (quiet hours) when given: workers do not send it earlier."""
    body = render(template, lang, **params)
    row = conn.execute(text(
        "INSERT INTO notification_outbox (idempotency_key, recipient, lang, template, body, next_attempt_at) "
        "VALUES (:key, :recipient, :lang, :template, :body, coalesce(:not_before, now())) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"),
        {"key": key, "recipient": recipient, "lang": lang, "template": template, "body": body,
         "not_before": not_before}).scalar()
    return None if row is None else int(row)


def texts_of(conn: Connection, *, prefix: str) -> list[dict[str, object]]:
    """The texts queued under idempotency keys starting with ``prefix`` (``booking:12:``, ``emergency:3:``),
    oldest first: the body exactly as it is (or was) sent, its language, template and delivery status."""
    rows = conn.execute(text(
        "SELECT id, idempotency_key, template, lang, body, status, created_at, sent_at FROM notification_outbox "
        "WHERE starts_with(idempotency_key, :prefix) ORDER BY id"), {"prefix": prefix}).mappings().all()
    return [dict(r) for r in rows]
