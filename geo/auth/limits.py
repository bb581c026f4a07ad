"""A small generic rate limiter: fixed-window counters in PostgreSQL (table ``rate_limits``), so a limit holds
across every worker process and server.

A ``Limit`` is a bucket name, a count and a window; ``hit`` counts one event of a key (an account id, a
verified person's ``ci_hash``, a client address, a phone number) in the current window and raises
``RateLimited`` (a 429 with ``Retry-After``) once the count would pass the limit. Keys are stored as SHA-256
(with the bucket), never as the raw address or number. The count is written in the caller's transaction: a
request that fails for another reason (and rolls back) does not use up the caller's allowance, and concurrent
hits of one key serialise on its row, so N concurrent requests never pass a limit of fewer than N.

Login throttling is not done here (``geo.auth.accounts`` keys it per account and per address).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from geo.errors import RateLimited
from geo.settings import Settings

HOUR_S = 3600
DAY_S = 86400


@dataclass(frozen=True)
class Limit:
    """At most ``max_hits`` events per key in each fixed window of ``window_s`` seconds (UTC-aligned)."""

    bucket: str
    max_hits: int
    window_s: int
    what: str = "requests"


def key_hash(bucket: str, key: str) -> str:
    """SHA-256 hex of ``bucket`` and ``key`` (what ``rate_limits`` stores)."""
    return hashlib.sha256(f"{bucket}\x00{key}".encode()).hexdigest()


def _window_start(now: datetime, window_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, tz=UTC)


def hit(conn: Connection, limit: Limit, key: str | int | None, *, now: datetime | None = None) -> int:
    """Count one event of ``key`` against ``limit``; returns the count in the window.

    A ``None`` key (e.g. no client address, an unverified account's person) is not counted.

    Raises
    ------
    RateLimited
        The window already holds ``max_hits`` events of ``key``; ``retry_after_s`` is the rest of the window.
    """
    if key is None:
        return 0
    now = now or datetime.now(UTC)
    start = _window_start(now, limit.window_s)
    digest = key_hash(limit.bucket, str(key))
    hits = int(conn.execute(text(
        "INSERT INTO rate_limits (bucket, key_hash, window_start, hits) VALUES (:b, :k, :w, 1) "
        "ON CONFLICT (bucket, key_hash, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits"),
        {"b": limit.bucket, "k": digest, "w": start}).scalar_one())
    if hits > limit.max_hits:
        retry = max(1, int((start + timedelta(seconds=limit.window_s) - now).total_seconds()) + 1)
        raise RateLimited(f"too many {limit.what}: at most {limit.max_hits} per "
                          f"{_span(limit.window_s)}; try again in {retry} s",
                          retry_after_s=retry, limit=limit.bucket)
    if hits == 1:  # a new window: drop this key's older ones
        conn.execute(text("DELETE FROM rate_limits WHERE bucket = :b AND key_hash = :k AND window_start < :w"),
                     {"b": limit.bucket, "k": digest, "w": start})
    return hits


def _span(window_s: int) -> str:
    if window_s == HOUR_S:
        return "hour"
    if window_s == DAY_S:
        return "day"
    return f"{window_s} s"


def purge(conn: Connection, *, before: datetime) -> int:
    """Delete the windows that started before ``before`` (no limit here spans more than a day); returns how
    many."""
    return int(conn.execute(text("DELETE FROM rate_limits WHERE window_start < :before"),
                            {"before": before}).rowcount or 0)


def _ci_hash(conn: Connection, user_id: int) -> str | None:
    return conn.execute(text("SELECT ci_hash FROM users WHERE id = :u"), {"u": user_id}).scalar()


def check_signup(conn: Connection, settings: Settings, *, client_ip: str | None) -> None:
    """Count a sign-up (or a password-reset mail) from ``client_ip``; ``RateLimited`` past the hourly or daily
    limit of ``settings.limits``."""
    cfg = settings.limits
    if not cfg.enabled:
        return
    hit(conn, Limit("signup_ip_hour", cfg.signup_per_ip_hour, HOUR_S, "sign-ups from this address"), client_ip)
    hit(conn, Limit("signup_ip_day", cfg.signup_per_ip_day, DAY_S, "sign-ups from this address"), client_ip)


def check_account_mail(conn: Connection, settings: Settings, *, email: str) -> bool:
    """Count an account mail to ``email``; False (send nothing, say nothing) past the daily limit, so that
    nobody can flood an inbox through sign-up or password reset."""
    cfg = settings.limits
    if not cfg.enabled:
        return True
    try:
        with conn.begin_nested():
            hit(conn, Limit("mail_address_day", cfg.mail_per_account_day, DAY_S, "mails"), email)
    except RateLimited:
        return False
    return True


def check_parent_action(conn: Connection, settings: Settings, *, kind: str, user_id: int,
                        client_ip: str | None) -> None:
    """Count a booking (``kind="booking"``) or an emergency request (``kind="emergency"``) per account, per
    verified person (``ci_hash``: every account of one person together) and per client address."""
    cfg = settings.limits
    if not cfg.enabled:
        return
    if kind == "booking":
        per_account, per_person, per_ip = (cfg.bookings_per_account_hour, cfg.bookings_per_person_day,
                                           cfg.bookings_per_ip_hour)
    elif kind == "emergency":
        per_account, per_person, per_ip = (cfg.emergency_per_account_hour, cfg.emergency_per_person_day,
                                           cfg.emergency_per_ip_hour)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    what = "bookings" if kind == "booking" else "emergency requests"
    hit(conn, Limit(f"{kind}_account_hour", per_account, HOUR_S, f"{what} of this account"), user_id)
    hit(conn, Limit(f"{kind}_person_day", per_person, DAY_S, f"{what} of this person"), _ci_hash(conn, user_id))
    hit(conn, Limit(f"{kind}_ip_hour", per_ip, HOUR_S, f"{what} from this address"), client_ip)


def check_texts(conn: Connection, settings: Settings, *, phone: str | None) -> None:
    """Count a text a parent's request queues to ``phone`` (digits only, so ``010-1234-5678`` and
    ``01012345678`` are one number); ``RateLimited`` past the daily cap per destination."""
    cfg = settings.limits
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if not cfg.enabled or not digits:
        return
    hit(conn, Limit("texts_phone_day", cfg.texts_per_phone_day, DAY_S, "texts to this number"), digits)
