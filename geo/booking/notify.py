"""Sending the outbox: providers behind a Protocol, retries with exponential backoff, delivery status.

Exactly once across crashes: a worker claims a message with a lease (``locked_until``) and commits; it then
hands the message to the provider with the row's ``idempotency_key``, and marks it sent. A worker that dies
between the two leaves the lease to expire; the next worker sends again with the same key and the provider
(the file sink, or a gateway honouring ``Idempotency-Key``) answers with the first delivery instead of a second.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import Engine, text

from geo.settings import Settings


class SendError(Exception):
    """The provider refused or failed; ``permanent`` means retrying cannot help (e.g. a bad number)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    """One outbox row as handed to a provider."""

    id: int
    idempotency_key: str
    recipient: str
    body: str


class Provider(Protocol):
    """Something that delivers a text; the same ``idempotency_key`` twice must deliver once."""

    def send(self, message: Message) -> str:
        """Deliver ``message``; return the provider's message id (the first one for a repeated key)."""
        ...


class FileSink:
    """A JSON-lines file standing in for an SMS gateway; a key already in the file is not written again."""

    def __init__(self, path: Path, *, ack_delay_s: float = 0.0) -> None:
        self.path = path
        # Seconds between writing and answering: a slow gateway acknowledgement (and a window for crash tests).
        self.ack_delay_s = ack_delay_s

    def send(self, message: Message) -> str:
        """Append the message unless its key is there; the whole check-and-append holds an exclusive lock.

        The file holds phone numbers: it is created ``0600`` in a directory created ``0700`` (whatever the
        umask), and a file found more open than ``0600`` is narrowed to it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        with open(fd, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                for line in fh:
                    if line.strip() and json.loads(line)["idempotency_key"] == message.idempotency_key:
                        return f"file:{message.idempotency_key}"
                fh.write(json.dumps({"idempotency_key": message.idempotency_key, "to": message.recipient,
                                     "body": message.body, "at": datetime.now(UTC).isoformat()},
                                    ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        if self.ack_delay_s:
            time.sleep(self.ack_delay_s)
        return f"file:{message.idempotency_key}"


    def forget_before(self, cutoff: datetime) -> int:
        """Remove the lines written before ``cutoff`` (retention: they hold phone numbers), in place under the
        sink's lock so that a concurrent ``send`` is neither lost nor duplicated; returns how many were removed.
        A line without a readable time is kept (never lose what cannot be dated)."""
        if not self.path.exists():
            return 0
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        with open(fd, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                lines = [line for line in fh if line.strip()]
                kept = [line for line in lines if not _written_before(line, cutoff)]
                if len(kept) == len(lines):
                    return 0
                fh.seek(0)
                fh.truncate()
                fh.writelines(kept)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return len(lines) - len(kept)


def _written_before(line: str, cutoff: datetime) -> bool:
    try:
        return datetime.fromisoformat(json.loads(line)["at"]) < cutoff
    except (ValueError, KeyError, TypeError):
        return False


class HttpSmsGateway:
    """An HTTP SMS gateway: ``POST {url}`` with ``{"from", "to", "text"}``, a bearer key and ``Idempotency-Key``.

    2xx is delivered (the JSON ``id`` is the provider id); 429 and 5xx are retried; other 4xx are permanent.
    """

    def __init__(self, *, url: str, api_key: str | None, sender: str, timeout_s: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.api_key, self.sender = url, api_key, sender
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def send(self, message: Message) -> str:
        """POST the message; raise ``SendError`` on failure (permanent for an e-mail address: account mails need
        a mail provider, which the SMS gateway is not)."""
        if "@" in message.recipient:
            raise SendError("an account mail cannot go through the SMS gateway (no mail provider)", permanent=True)
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            resp = self.client.post(self.url, headers=headers,
                                    json={"from": self.sender, "to": message.recipient, "text": message.body})
        except httpx.HTTPError as exc:
            raise SendError(f"gateway unreachable: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise SendError(f"gateway answered {resp.status_code}")
        if resp.status_code >= 400:
            raise SendError(f"gateway refused the message: {resp.status_code} {resp.text[:200]}", permanent=True)
        try:
            return str(resp.json().get("id") or message.idempotency_key)
        except ValueError:
            return message.idempotency_key


def provider_from_settings(settings: Settings) -> Provider:
    """The provider ``settings.notify.provider`` names (``file`` by default, ``http`` for the SMS gateway)."""
    if settings.notify.provider == "http":
        if not settings.notify.sms_gateway_url:
            raise ValueError("DOLBOM_SMS_GATEWAY_URL must be set for the http notification provider")
        return HttpSmsGateway(url=settings.notify.sms_gateway_url, api_key=settings.notify.sms_gateway_key,
                              sender=settings.notify.sms_gateway_sender, timeout_s=settings.notify.timeout_s)
    if settings.notify.provider == "file":
        path = settings.notify.file_path or settings.local.data_dir / "sms-outbox.jsonl"
        return FileSink(path, ack_delay_s=settings.notify.file_ack_delay_s)
    raise ValueError(f"unknown notification provider {settings.notify.provider!r} (file or http)")


def backoff(attempts: int, *, base_s: float) -> timedelta:
    """Wait before attempt ``attempts + 1``: base × 2^(attempts − 1), at most an hour."""
    return timedelta(seconds=min(3600.0, base_s * 2 ** max(0, attempts - 1)))


def claim(engine: Engine, *, lease_s: float) -> Message | None:
    """Take the oldest due message (skipping ones other workers hold) under a lease; committed at once."""
    with engine.begin() as conn:
        row = conn.execute(text("""
            UPDATE notification_outbox SET locked_until = now() + make_interval(secs => :lease),
                   attempts = attempts + 1
            WHERE id = (SELECT id FROM notification_outbox
                        WHERE status = 'pending' AND next_attempt_at <= now()
                          AND (locked_until IS NULL OR locked_until < now())
                        ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING id, idempotency_key, recipient, body
        """), {"lease": lease_s}).mappings().one_or_none()
    return None if row is None else Message(**row)


def deliver_one(engine: Engine, provider: Provider, settings: Settings) -> bool:
    """Claim, send and record one message; False when nothing is due."""
    message = claim(engine, lease_s=settings.notify.lease_s)
    if message is None:
        return False
    try:
        provider_id = provider.send(message)
    except SendError as exc:
        with engine.begin() as conn:
            attempts = int(conn.execute(text("SELECT attempts FROM notification_outbox WHERE id = :id"),
                                        {"id": message.id}).scalar_one())
            failed = exc.permanent or attempts >= settings.notify.max_attempts
            conn.execute(text(
                "UPDATE notification_outbox SET status = :status, last_error = :err, locked_until = NULL, "
                "next_attempt_at = now() + make_interval(secs => :wait) WHERE id = :id"),
                {"status": "failed" if failed else "pending", "err": str(exc)[:500], "id": message.id,
                 "wait": backoff(attempts, base_s=settings.notify.backoff_s).total_seconds()})
        return True
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE notification_outbox SET status = 'sent', sent_at = now(), provider_message_id = :pid, "
            "locked_until = NULL, last_error = NULL WHERE id = :id"), {"pid": provider_id, "id": message.id})
    return True


def run_worker(engine: Engine, settings: Settings, *, provider: Provider | None = None, once: bool = False,
               poll_s: float = 2.0, max_messages: int | None = None) -> int:
    """Send due messages until stopped (``once``: until none is due); returns how many were handled."""
    provider = provider or provider_from_settings(settings)
    handled = 0
    while max_messages is None or handled < max_messages:
        if deliver_one(engine, provider, settings):
            handled += 1
            continue
        if once:
            break
        time.sleep(poll_s)
    return handled


def delivery_counts(engine: Engine) -> dict[str, int]:
    """Outbox rows by status."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM notification_outbox GROUP BY status")).all()
    return {str(s): int(n) for s, n in rows}
