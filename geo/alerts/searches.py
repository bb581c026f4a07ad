"""Saved searches: create (explicit opt-in, recorded with its time), list with the messages sent, pause and resume,
delete, and unsubscribe by a message's link (no login). Every change is audited.

A search is a circle: a point (lon/lat, EPSG:4326) found by the place search (``geo.search.places``: an address
fragment, a 동 or 구, a centre's name) and a radius in metres (``MIN_RADIUS_M``-``MAX_RADIUS_M``), with the
child's age (0-5), an optional service (``geo.domain.Service``) and the channel: ``sms`` goes to the verified
phone (본인인증), ``email`` to the account's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Connection, text

from geo.alerts.firing import alert_key_prefix
from geo.auth.accounts import sha256_hex
from geo.auth.audit import audit
from geo.booking.templates import LANGS
from geo.db import Conn
from geo.domain import Service
from geo.errors import Conflict, InvalidQuery, NotFound
from geo.search.places import Place, search_places
from geo.settings import Settings

MIN_RADIUS_M = 100
MAX_RADIUS_M = 5000
RADIUS_CHOICES_M = (300, 500, 1000, 2000, 3000, 5000)
CHANNELS = ("sms", "email")
MAX_SEARCHES_PER_OWNER = 20
MAX_MESSAGES_SHOWN = 20


@dataclass(frozen=True)
class SavedSearchIn:
    """What a parent asks for; ``opted_in`` is the explicit consent box (required)."""

    place_label: str
    lon: float
    lat: float
    radius_m: int
    child_age: int
    channel: str
    lang: str = "ko"
    service: str | None = None
    quiet_from: time | None = None
    quiet_until: time | None = None
    opted_in: bool = False


def find_place(conn: Conn, *, query: str, settings: Settings) -> Place:
    """The best place for a typed address, 동, 구 or centre name; ``InvalidQuery`` (param ``place``) when none."""
    if not query.strip():
        raise InvalidQuery("type an address, a 동 or 구, or a centre's name", param="place")
    try:
        places = search_places(conn, query=query, settings=settings, limit=1)
    except InvalidQuery as exc:
        raise InvalidQuery(str(exc), param="place") from exc
    if not places:
        raise InvalidQuery(f"no place found for {query!r}", param="place", reason="no_place")
    return places[0]


def _check(conn: Connection, owner_user_id: int, search: SavedSearchIn) -> None:
    if not search.opted_in:
        raise InvalidQuery("tick the box to agree to receive these messages", param="opt_in", reason="no_opt_in")
    if not MIN_RADIUS_M <= search.radius_m <= MAX_RADIUS_M:
        raise InvalidQuery(f"radius_m must be {MIN_RADIUS_M}-{MAX_RADIUS_M} metres", param="radius_m")
    if not 0 <= search.child_age <= 5:
        raise InvalidQuery("child_age must be 0-5", param="child_age")
    if not (-180 <= search.lon <= 180 and -90 <= search.lat <= 90):
        raise InvalidQuery("the place is not a lon/lat point", param="place")
    if search.service is not None and search.service not in {s.value for s in Service}:
        raise InvalidQuery(f"unknown service {search.service!r}", param="service")
    if search.lang not in LANGS:
        raise InvalidQuery(f"lang must be one of {', '.join(LANGS)}", param="lang")
    if (search.quiet_from is None) != (search.quiet_until is None) or (
            search.quiet_from is not None and search.quiet_from == search.quiet_until):
        raise InvalidQuery("quiet hours need a start and a different end", param="quiet_from")
    if search.channel not in CHANNELS:
        raise InvalidQuery("channel must be sms or email", param="channel")
    if search.channel == "sms":
        phone = conn.execute(text("SELECT verified_phone FROM users WHERE id = :u"), {"u": owner_user_id}).scalar()
        if not phone:
            raise InvalidQuery("texts go to the phone of your identity verification (본인인증); verify first or "
                               "choose e-mail", param="channel", reason="no_phone")
    count = conn.execute(text("SELECT count(*) FROM saved_searches WHERE owner_user_id = :u"),
                         {"u": owner_user_id}).scalar_one()
    if count >= MAX_SEARCHES_PER_OWNER:
        raise Conflict(f"at most {MAX_SEARCHES_PER_OWNER} alerts per account; delete one first",
                       reason="too_many_alerts")


def create_search(conn: Connection, *, owner_user_id: int, search: SavedSearchIn,
                  now: datetime | None = None) -> int:
    """Save a search with its opt-in time (now); returns its id. ``InvalidQuery`` names the field at fault."""
    _check(conn, owner_user_id, search)
    at = now or datetime.now(UTC)
    search_id = int(conn.execute(text("""
        INSERT INTO saved_searches (owner_user_id, place_label, lon, lat, radius_m, child_age, service, channel, lang,
                                    opted_in_at, quiet_from, quiet_until)
        VALUES (:u, :label, :lon, :lat, :r, :age, :service, :channel, :lang, :at, :qf, :qu) RETURNING id
    """), {"u": owner_user_id, "label": search.place_label[:200], "lon": search.lon, "lat": search.lat,
           "r": search.radius_m, "age": search.child_age, "service": search.service, "channel": search.channel,
           "lang": search.lang, "at": at, "qf": search.quiet_from, "qu": search.quiet_until}).scalar_one())
    audit(conn, actor_user_id=owner_user_id, action="alert.create", entity="saved_searches", entity_id=search_id,
          before=None, after={"radius_m": search.radius_m, "child_age": search.child_age, "channel": search.channel,
                              "service": search.service, "opted_in_at": at.isoformat()})
    return search_id


def list_searches(conn: Connection, *, owner_user_id: int) -> list[dict[str, Any]]:
    """The owner's searches, newest first, each with its last messages (``messages``: outbox rows, newest first)."""
    rows = conn.execute(text("""
        SELECT id, place_label, lon, lat, radius_m, child_age, service, channel, lang, opted_in_at, quiet_from,
               quiet_until, active, unsubscribed_at, created_at
        FROM saved_searches WHERE owner_user_id = :u ORDER BY created_at DESC, id DESC
    """), {"u": owner_user_id}).mappings().all()
    out = []
    for r in rows:
        item = dict(r)
        item["messages"] = messages_of(conn, search_id=int(r["id"]))
        out.append(item)
    return out


def messages_of(conn: Connection, *, search_id: int, limit: int = MAX_MESSAGES_SHOWN) -> list[dict[str, Any]]:
    """A search's messages from the outbox (status pending/sent/failed, when queued, due and sent), newest first."""
    rows = conn.execute(text("""
        SELECT id, idempotency_key, recipient, lang, body, status, created_at, next_attempt_at, sent_at, last_error
        FROM notification_outbox WHERE idempotency_key LIKE :prefix ORDER BY created_at DESC, id DESC LIMIT :n
    """), {"prefix": alert_key_prefix(search_id) + "%", "n": limit}).mappings().all()
    return [dict(r) for r in rows]


def _owned(conn: Connection, owner_user_id: int, search_id: int) -> Any:
    row = conn.execute(text("SELECT id, active FROM saved_searches WHERE id = :s AND owner_user_id = :u FOR UPDATE"),
                       {"s": search_id, "u": owner_user_id}).first()
    if row is None:
        raise NotFound(f"no alert {search_id}")
    return row


def _cancel_pending(conn: Connection, search_id: int, reason: str) -> int:
    """Held messages (quiet hours, or not sent yet) of a search that stopped are not sent."""
    return conn.execute(text("""
        UPDATE notification_outbox SET status = 'failed', last_error = :reason
        WHERE idempotency_key LIKE :prefix AND status = 'pending'
    """), {"prefix": alert_key_prefix(search_id) + "%", "reason": reason}).rowcount


def set_active(conn: Connection, *, owner_user_id: int, search_id: int, active: bool) -> None:
    """Pause (``active=False``: held messages are dropped) or resume a search of the owner's."""
    row = _owned(conn, owner_user_id, search_id)
    conn.execute(text("UPDATE saved_searches SET active = :a, unsubscribed_at = CASE WHEN :a THEN NULL "
                      "ELSE unsubscribed_at END WHERE id = :s"), {"a": active, "s": search_id})
    if not active:
        _cancel_pending(conn, search_id, "alert paused")
    audit(conn, actor_user_id=owner_user_id, action="alert.resume" if active else "alert.pause",
          entity="saved_searches", entity_id=search_id, before={"active": row.active}, after={"active": active})


def delete_search(conn: Connection, *, owner_user_id: int, search_id: int) -> None:
    """Delete a search of the owner's (held messages are dropped; sent ones stay in the outbox until retention)."""
    _owned(conn, owner_user_id, search_id)
    _cancel_pending(conn, search_id, "alert deleted")
    conn.execute(text("DELETE FROM saved_searches WHERE id = :s"), {"s": search_id})
    audit(conn, actor_user_id=owner_user_id, action="alert.delete", entity="saved_searches", entity_id=search_id,
          before=None, after=None)


def _by_token(conn: Connection, token: str, *, lock: bool = False) -> Any:
    row = conn.execute(text(
        "SELECT s.id, s.owner_user_id, s.place_label, s.radius_m, s.child_age, s.active, s.lang "
        "FROM saved_search_tokens t JOIN saved_searches s ON s.id = t.saved_search_id WHERE t.token_hash = :h"
        + (" FOR UPDATE OF s" if lock else "")), {"h": sha256_hex(token.strip())}).first()
    if row is None:
        raise NotFound("this unsubscribe link is unknown (the alert may have been deleted)", param="token")
    return row


def unsubscribe_target(conn: Connection, token: str) -> dict[str, Any]:
    """What an unsubscribe link would stop (shown before the confirmation); ``NotFound`` for an unknown token."""
    return dict(_by_token(conn, token)._mapping)


def unsubscribe(conn: Connection, token: str) -> dict[str, Any]:
    """Stop the search of an unsubscribe link (no login: the link is the proof); idempotent."""
    row = _by_token(conn, token, lock=True)
    if row.active:
        conn.execute(text("UPDATE saved_searches SET active = false, unsubscribed_at = now() WHERE id = :s"),
                     {"s": row.id})
        _cancel_pending(conn, row.id, "unsubscribed")
        audit(conn, actor_user_id=None, action="alert.unsubscribe", entity="saved_searches", entity_id=row.id,
              before={"active": True}, after={"active": False, "by": "link"})
    return {**dict(row._mapping), "active": False}


def erase_owner(conn: Connection, *, user_id: int) -> dict[str, int]:
    """Account deletion: the owner's searches are deleted and their messages lose recipient and body (pending
    ones are not sent)."""
    ids = conn.execute(text("SELECT id FROM saved_searches WHERE owner_user_id = :u"), {"u": user_id}).scalars().all()
    texts = conn.execute(text("""UPDATE notification_outbox SET recipient = '', body = '',
                                        status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
                                        last_error = CASE WHEN status = 'pending' THEN 'account deleted'
                                                          ELSE last_error END
                                 WHERE idempotency_key LIKE ANY(:keys)"""),
                         {"keys": [alert_key_prefix(i) + "%" for i in ids]}).rowcount if ids else 0
    deleted = conn.execute(text("DELETE FROM saved_searches WHERE owner_user_id = :u"), {"u": user_id}).rowcount
    return {"alerts_deleted": deleted, "alert_texts_erased": texts}
