"""Retention of personal data: ``purge`` nulls or pseudonymises personal fields once their retention period
(``settings.privacy``) has passed, keeping the rows that statistics and the audit trail need. Run it daily
(``dolbom privacy purge``); it is idempotent, and its ``now`` is injectable for tests.

- sent or failed texts (outbox rows, the file sink's lines): ``outbox_days`` after sending, then recipient and
  body are emptied and the sink's lines removed;
- bookings and emergency requests: ``bookings_days`` after the slot (or the need) ended or the booking was
  cancelled, then the child's name and the phone are removed and the place rounded to 0.01°;
- personal fields of audit rows: ``audit_personal_days``, then replaced by ``"erased"`` (who, what, when stay);
- failed logins (e-mail, client address): ``login_failures_days``, then deleted;
- abuse-limit windows (hashed keys) two days after they started, and spent or expired mail tokens
  (confirmation, password reset) ``login_failures_days`` after they were issued: deleted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from geo.auth import limits
from geo.errors import InvalidQuery
from geo.privacy.pseudonymise import COARSE_DEGREES, scrub_audit
from geo.settings import Settings


@dataclass(frozen=True)
class PurgeResult:
    """Rows (and sink lines) changed by one purge, by kind of data."""

    texts: int
    bookings: int
    emergency_requests: int
    audit_rows: int
    login_failures: int
    sink_lines: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by kind."""
        return asdict(self)


def purge(conn: Connection, settings: Settings, *, now: datetime, sink_path: Path | None = None) -> PurgeResult:
    """Pseudonymise or delete the personal data older than its retention period at ``now`` (timezone-aware),
    in ``conn``'s transaction; ``sink_path``: the notification file sink to trim as well."""
    if now.tzinfo is None:
        raise InvalidQuery("now must carry a time zone", param="now")
    p = settings.privacy
    texts_before = now - timedelta(days=p.outbox_days)
    bookings_before = now - timedelta(days=p.bookings_days)
    texts = conn.execute(text("""
        UPDATE notification_outbox SET recipient = '', body = ''
        WHERE status IN ('sent', 'failed') AND COALESCE(sent_at, created_at) < :before
          AND (recipient <> '' OR body <> '')"""), {"before": texts_before}).rowcount
    bookings = conn.execute(text("""
        UPDATE bookings b SET child_name = NULL, phone = ''
        FROM booking_slots s
        WHERE s.id = b.slot_id AND (s.ends_at < :before OR (b.status = 'cancelled' AND b.updated_at < :before))
          AND (b.child_name IS NOT NULL OR b.phone <> '')"""), {"before": bookings_before}).rowcount
    requests = conn.execute(text("""
        UPDATE emergency_requests SET phone = '', lon = round(CAST(lon AS numeric), :d),
               lat = round(CAST(lat AS numeric), :d)
        WHERE needed_until < :before
          AND (phone <> '' OR lon <> round(CAST(lon AS numeric), :d) OR lat <> round(CAST(lat AS numeric), :d))"""),
        {"before": bookings_before, "d": COARSE_DEGREES}).rowcount
    audit_rows = scrub_audit(conn, older_than=now - timedelta(days=p.audit_personal_days))
    failures = conn.execute(text("DELETE FROM login_failures WHERE at < :before"),
                            {"before": now - timedelta(days=p.login_failures_days)}).rowcount
    # Not personal (hashed keys, token hashes), so not counted in the result: housekeeping.
    limits.purge(conn, before=now - timedelta(days=2))
    conn.execute(text("DELETE FROM account_mail_tokens WHERE created_at < :before "
                      "AND (used_at IS NOT NULL OR expires_at < :now)"),
                 {"before": now - timedelta(days=p.login_failures_days), "now": now})
    sink_lines = 0
    if sink_path is not None:
        from geo.booking.notify import FileSink

        sink_lines = FileSink(sink_path).forget_before(texts_before)
    return PurgeResult(texts=texts, bookings=bookings, emergency_requests=requests, audit_rows=audit_rows,
                       login_failures=failures, sink_lines=sink_lines)
