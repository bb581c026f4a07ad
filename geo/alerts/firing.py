"""What a vacancy report sends: one message per active saved search whose circle holds the centre, for each age
whose free places went up (0 -> 1, or 2 -> 3), queued in the report's own transaction through the outbox.

The outbox key ``alert:<search id>:<centre id>:<report id>`` makes a second run for the same report a no-op; a
message due inside the search's quiet hours (Asia/Seoul wall clock) is held until they end. Each message carries
its own unsubscribe link: a random token whose SHA-256 only is stored (``saved_search_tokens``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Connection, text

from geo.auth.accounts import sha256_hex
from geo.booking.outbox import enqueue_held
from geo.domain import SEOUL_TZ

DEFAULT_PUBLIC_URL = "http://localhost:8000"
UNSUBSCRIBE_PATH = "/portal/alerts/unsubscribe/"
AGES = ("0", "1", "2", "3", "4", "5")


def alert_key(search_id: int, facility_id: int, report_id: int) -> str:
    """The outbox idempotency key of one alert message (at most 64 characters)."""
    return f"alert:{search_id}:{facility_id}:{report_id}"


def alert_key_prefix(search_id: int) -> str:
    """The prefix every outbox key of a saved search's messages starts with (for ``LIKE``)."""
    return f"alert:{search_id}:"


def quiet_release(now: datetime, quiet_from: time | None, quiet_until: time | None) -> datetime | None:
    """When a message due at ``now`` may go out: None (now) outside the quiet hours, else the end of the quiet
    window (an aware datetime). ``quiet_from``/``quiet_until`` are Asia/Seoul wall-clock times; a window that
    crosses midnight (22:00-07:00) ends the next morning."""
    if quiet_from is None or quiet_until is None or quiet_from == quiet_until:
        return None
    local = now.astimezone(SEOUL_TZ)
    t = local.time().replace(tzinfo=None)
    day = local.date()
    if quiet_from < quiet_until:
        inside, end_day = quiet_from <= t < quiet_until, day
    elif t >= quiet_from:
        inside, end_day = True, day + timedelta(days=1)
    else:
        inside, end_day = t < quiet_until, day
    if not inside:
        return None
    return datetime.combine(end_day, quiet_until, tzinfo=SEOUL_TZ)


def raised_ages(free_before: Mapping[str, object] | None, free_after: Mapping[str, object]) -> list[int]:
    """Ages 0-5 whose free places went up (a missing or non-numeric figure counts as 0)."""
    def n(values: Mapping[str, object] | None, age: str) -> int:
        value = (values or {}).get(age)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    return [int(a) for a in AGES if n(free_after, a) > n(free_before, a)]


_MATCHES = text("""
    SELECT s.id, s.child_age, s.radius_m, s.place_label, s.channel, s.lang, s.quiet_from, s.quiet_until,
           u.email, u.verified_phone,
           ST_Distance(f.geom_4326::geography,
                       ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography) AS distance_m
    FROM saved_searches s
    JOIN users u ON u.id = s.owner_user_id
    JOIN facilities f ON f.id = :fid
    WHERE s.active AND NOT u.disabled AND s.child_age = ANY(:ages)
      AND (s.service IS NULL OR s.service = ANY(coalesce(f.services, '{}'::text[])))
      AND ST_DWithin(f.geom_4326::geography, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography, s.radius_m)
    ORDER BY s.id
""")


def fire_for_report(conn: Connection, *, facility_id: int, centre_name: str, report_id: int,
                    free_before: Mapping[str, object] | None, free_after: Mapping[str, object],
                    public_url: str | None = None, now: datetime | None = None) -> int:
    """Queue the alert messages a report causes (in ``conn``'s transaction); returns how many were queued.

    A search gets one message per report whatever the number of ages that changed (it names one age: its own);
    a search whose owner has no address for its channel (an SMS search after the phone was removed) is skipped.
    """
    ages = raised_ages(free_before, free_after)
    if not ages:
        return 0
    at = now or datetime.now(UTC)
    base = (public_url or DEFAULT_PUBLIC_URL).rstrip("/")
    queued = 0
    for s in conn.execute(_MATCHES, {"fid": facility_id, "ages": ages}).all():
        recipient = s.email if s.channel == "email" else s.verified_phone
        if not recipient:
            continue
        token = secrets.token_urlsafe(24)
        outbox_id = enqueue_held(
            conn, key=alert_key(s.id, facility_id, report_id), recipient=recipient, lang=s.lang,
            template="alert_vacancy", not_before=quiet_release(at, s.quiet_from, s.quiet_until),
            params={"centre": centre_name, "place": s.place_label, "age": s.child_age,
                    "free": free_after.get(str(s.child_age)), "distance_km": f"{float(s.distance_m) / 1000:.1f}",
                    "link": f"{base}{UNSUBSCRIBE_PATH}{token}"})
        if outbox_id is None:  # this report already alerted this search
            continue
        conn.execute(text("INSERT INTO saved_search_tokens (token_hash, saved_search_id) VALUES (:h, :s)"),
                     {"h": sha256_hex(token), "s": s.id})
        queued += 1
    return queued
