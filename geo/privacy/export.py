"""Everything held about an account and its children (the right of access, 개인정보보호법 제35조), as one dict of
sections (lists of rows), JSON, or a zip of CSV files (one per section).

Sections: the account, its identity verification facts (본인인증: name, birth date, phone, provider, when; never
the CI or its hash), children with their claims, waitlist applications and offers, care bookings and emergency
requests, saved searches (alerts), notices, the texts and mails sent (the outbox: account mails to the address,
and every message about the account's bookings, requests and alerts), sessions and tokens (no secrets), and the
audit rows the account made or that are about it. The public waitlist log holds no personal data (random ids
only) and is not part of it: docs/transparency-log.md.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from geo.alerts.firing import alert_key_prefix
from geo.auth.accounts import get_user

SECTIONS = ("account", "identity", "children", "claims", "applications", "offers", "bookings",
            "emergency_requests", "alerts", "notices", "notifications", "sessions", "audit")


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings().all()]


def export_account(conn: Connection, *, user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Every section for ``user_id`` (``{"generated_at", "user_id", "sections": {name: [row, ...]}}``)."""
    user = get_user(conn, user_id)
    p = {"u": user_id}
    account = {k: user[k] for k in ("id", "email", "role", "display_name", "district_code", "disabled", "created_at",
                                    "email_confirmed_at", "facility_codes")}
    identity = ([{k: user[k] for k in ("verified_name", "verified_birth_date", "verified_phone", "identity_provider",
                                       "verified_at")}] if user["verified_at"] else [])
    booking_ids = conn.execute(text("SELECT id FROM bookings WHERE parent_user_id = :u"), p).scalars().all()
    request_ids = conn.execute(text("SELECT id FROM emergency_requests WHERE parent_user_id = :u"), p).scalars().all()
    alert_ids = conn.execute(text("SELECT id FROM saved_searches WHERE owner_user_id = :u"), p).scalars().all()
    keys = ([f"booking:{i}:%" for i in booking_ids] + [f"emergency:{i}:%" for i in request_ids]
            + [alert_key_prefix(i) + "%" for i in alert_ids])
    sections: dict[str, list[dict[str, Any]]] = {
        "account": [account],
        "identity": identity,
        "children": _rows(conn, """SELECT public_id, name, birth_date, enrolled, created_at FROM children
                                   WHERE parent_user_id = :u ORDER BY id""", p),
        "claims": _rows(conn, """SELECT ch.public_id AS child, c.category, c.evidence, c.verified_at
                                 FROM claims c JOIN children ch ON ch.id = c.child_id
                                 WHERE ch.parent_user_id = :u ORDER BY c.id""", p),
        "applications": _rows(conn, """
            SELECT e.public_id, ch.public_id AS child, f.code AS centre_code, f.name AS centre_name, e.year,
                   e.age_class, e.preference, e.applied_at, e.status, e.status_at, e.lapse_at
            FROM waitlist_entries e JOIN children ch ON ch.id = e.child_id JOIN facilities f ON f.id = e.facility_id
            WHERE ch.parent_user_id = :u ORDER BY e.id""", p),
        "offers": _rows(conn, """
            SELECT o.id, ch.public_id AS child, f.code AS centre_code, f.name AS centre_name, o.age_class,
                   o.deadline, o.status, o.created_at, o.answered_at
            FROM waitlist_offers o JOIN children ch ON ch.id = o.child_id JOIN facilities f ON f.id = o.facility_id
            WHERE ch.parent_user_id = :u ORDER BY o.id""", p),
        "bookings": _rows(conn, """
            SELECT b.id, f.code AS centre_code, f.name AS centre_name, s.service, s.starts_at, s.ends_at,
                   b.child_age, b.child_name, b.phone, b.lang, b.status, b.created_at, b.updated_at
            FROM bookings b JOIN booking_slots s ON s.id = b.slot_id JOIN facilities f ON f.id = s.facility_id
            WHERE b.parent_user_id = :u ORDER BY b.id""", p),
        "emergency_requests": _rows(conn, """
            SELECT id, child_age, phone, lang, lon, lat, radius_m, needed_from, needed_until, status, accepted_at,
                   created_at
            FROM emergency_requests WHERE parent_user_id = :u ORDER BY id""", p),
        "alerts": _rows(conn, """
            SELECT id, place_label, lon, lat, radius_m, child_age, service, channel, lang, opted_in_at, quiet_from,
                   quiet_until, active, unsubscribed_at, created_at
            FROM saved_searches WHERE owner_user_id = :u ORDER BY id""", p),
        "notices": _rows(conn, """SELECT kind, message, created_at FROM waitlist_notices
                                  WHERE parent_user_id = :u ORDER BY id""", p),
        "notifications": _rows(conn, """
            SELECT idempotency_key AS key, template, recipient, lang, body, status, created_at, next_attempt_at,
                   sent_at
            FROM notification_outbox WHERE recipient = :email OR idempotency_key LIKE ANY(:keys)
            ORDER BY id""", {"email": user["email"], "keys": keys}),
        "sessions": _rows(conn, """SELECT kind, label, created_at, expires_at, revoked_at FROM auth_tokens
                                   WHERE user_id = :u ORDER BY id""", p),
        "audit": _rows(conn, """
            SELECT at, actor_user_id, action, entity, entity_id, before, after FROM audit_log
            WHERE actor_user_id = :u OR (entity = 'users' AND entity_id = :uid) ORDER BY id""",
                       {"u": user_id, "uid": str(user_id)}),
    }
    return {"generated_at": (now or datetime.now(UTC)).isoformat(), "user_id": user_id, "sections": sections}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(data: dict[str, Any]) -> bytes:
    """The export as UTF-8 JSON (dates ISO 8601, Korean text unescaped)."""
    return json.dumps(_plain(data), ensure_ascii=False, indent=2).encode()


def to_csv_zip(data: dict[str, Any]) -> bytes:
    """The export as a zip of ``<section>.csv`` files (UTF-8 with a BOM, so spreadsheet programs read Korean);
    nested values (audit before/after) are JSON in their cell."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, rows in data["sections"].items():
            buffer = io.StringIO()
            columns = list(dict.fromkeys(k for row in rows for k in row))
            writer = csv.writer(buffer)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([json.dumps(_plain(v), ensure_ascii=False) if isinstance(v, dict | list)
                                 else "" if v is None else _plain(v) for v in (row.get(c) for c in columns)])
            zf.writestr(f"{name}.csv", "\ufeff" + buffer.getvalue())
    return out.getvalue()
