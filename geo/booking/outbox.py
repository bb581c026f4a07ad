"""The notification outbox: rows written in the transaction of the change they report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from geo.booking.templates import render


def enqueue(conn: Connection, *, key: str, recipient: str, lang: str, template: str, not_before: datetime | None = None,
            **params: object) -> int | None:
    """Queue one message (in ``conn``'s transaction); a second message with the same ``key`` is ignored.
    ``not_before`` holds it until then (quiet hours); sent as soon as a worker runs otherwise.

    Returns the outbox id, or None when ``key`` was already queued.
    """
    body = render(template, lang, **params)
    row = conn.execute(text(
        "INSERT INTO notification_outbox (idempotency_key, recipient, lang, template, body, next_attempt_at) "
        "VALUES (:key, :recipient, :lang, :template, :body, coalesce(:not_before, now())) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"),
        {"key": key, "recipient": recipient, "lang": lang, "template": template, "body": body,
         "not_before": not_before}).scalar()
    return None if row is None else int(row)
