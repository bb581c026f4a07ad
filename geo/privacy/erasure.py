"""Deleting an account (the right to erasure, 개인정보보호법 제36조): what happens to each kind of data.

- Live waitlist entries are withdrawn (an open offer is declined and its place moves on to the next child), each
  with an audit row ``waitlist.withdraw`` (reason ``account_deleted``) and the usual chain event.
- Bookings of slots that have not started are cancelled (the waiting list moves up); every booking row stays for
  the centres' statistics with the child's name and the phone number removed.
- Emergency requests: open ones are cancelled; the phone number is removed and the place rounded to 0.01°.
- Texts about those bookings and requests lose recipient and body; pending ones are not sent.
- Saved searches (vacancy alerts) are deleted; their texts and mails lose recipient and body, pending ones are
  not sent.
- Children (with their claims, finished entries and offers) are deleted; the centres' public hash chains are never
  rewritten: their events name entries and children only by random public ids, which nothing links to the person
  any more.
- Audit rows about the account keep who-did-what-when, with e-mail, names, phone and birth date replaced by
  ``"erased"``; the account's own id stays as a pseudonym.
- Sessions, tokens, notices and failed logins are deleted; the ``users`` row stays as a disabled tombstone
  without e-mail, name, identity or usable password (its id is what the audit rows and chains point to).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from geo.admission import waitlist as wl
from geo.alerts.searches import erase_owner
from geo.auth.accounts import confirm_password
from geo.auth.audit import audit
from geo.booking.bookings import cancel
from geo.errors import Conflict
from geo.privacy.pseudonymise import COARSE_DEGREES, scrub_audit
from geo.settings import Settings

TOMBSTONE_DOMAIN = "deleted.invalid"  # RFC 2606: never a real mailbox


def tombstone_email(user_id: int) -> str:
    """The e-mail a deleted account keeps (unique, not anybody's)."""
    return f"deleted-{user_id}@{TOMBSTONE_DOMAIN}"


def delete_account(conn: Connection, settings: Settings, *, user_id: int, password: str, client_ip: str | None = None,
                   now: datetime | None = None) -> dict[str, int]:
    """Delete the account ``user_id`` after checking its password (see the module docstring); returns counts of
    what was withdrawn, cancelled, pseudonymised and deleted.

    Raises
    ------
    TooManyAttempts, Forbidden
        As ``geo.auth.accounts.confirm_password``: locked out, or a wrong password (a recorded failure).
    Conflict
        The last enabled city admin (nobody could manage accounts afterwards).
    """
    at = now or datetime.now(UTC)
    user = confirm_password(conn, settings, user_id=user_id, password=password, client_ip=client_ip)
    if user.role == "city_admin":
        others = conn.execute(text("SELECT count(*) FROM users WHERE role = 'city_admin' AND NOT disabled "
                                   "AND id <> :u"), {"u": user_id}).scalar_one()
        if others == 0:
            raise Conflict("the last city admin cannot delete their account; create another admin first",
                           reason="last_admin")
    out = {"entries_withdrawn": _withdraw_entries(conn, user_id, at)}
    out |= _bookings(conn, user_id, at)
    out |= erase_owner(conn, user_id=user_id)
    out["children_deleted"] = conn.execute(text("DELETE FROM children WHERE parent_user_id = :u"),
                                           {"u": user_id}).rowcount
    out["audit_rows_pseudonymised"] = scrub_audit(conn, user_id=user_id)
    out["login_failures_deleted"] = conn.execute(text("DELETE FROM login_failures WHERE email = :e"),
                                                 {"e": user.email}).rowcount
    out["tokens_deleted"] = conn.execute(text("DELETE FROM auth_tokens WHERE user_id = :u"), {"u": user_id}).rowcount
    conn.execute(text("DELETE FROM waitlist_notices WHERE parent_user_id = :u"), {"u": user_id})
    conn.execute(text("DELETE FROM user_centres WHERE user_id = :u"), {"u": user_id})
    conn.execute(text("""
        UPDATE users SET email = :email, password_hash = :pw, display_name = NULL, disabled = true,
               verified_name = NULL, verified_birth_date = NULL, verified_phone = NULL, ci_hash = NULL,
               identity_provider = NULL, verified_at = NULL
        WHERE id = :u"""), {"u": user_id, "email": tombstone_email(user_id),
                            "pw": "deleted:" + secrets.token_hex(16)})  # not an argon2 hash: matches no password
    audit(conn, actor_user_id=user_id, action="user.delete", entity="users", entity_id=user_id, before=None,
          after=dict(out))
    return out


def _withdraw_entries(conn: Connection, user_id: int, at: datetime) -> int:
    """Withdraw the waiting entries first, then decline the open offers, so that a place moving on cannot land on
    another entry of the same account."""
    rows = conn.execute(text("""SELECT e.public_id, e.status, o.id AS offer_id FROM waitlist_entries e
                                JOIN children ch ON ch.id = e.child_id
                                LEFT JOIN waitlist_offers o ON o.entry_id = e.id AND o.status = 'open'
                                WHERE ch.parent_user_id = :u AND e.status IN ('waiting', 'offered')
                                ORDER BY e.status DESC, e.id"""), {"u": user_id}).all()
    for r in rows:
        if r.offer_id is not None:
            wl.decline(conn, parent_user_id=user_id, offer_id=r.offer_id, now=at)
        else:
            wl.withdraw(conn, parent_user_id=user_id, entry_public_id=r.public_id, now=at)
        audit(conn, actor_user_id=user_id, action="waitlist.withdraw", entity="waitlist_entries",
              entity_id=r.public_id, before={"status": r.status},
              after={"status": "withdrawn", "reason": "account_deleted"})
    return len(rows)


def _bookings(conn: Connection, user_id: int, at: datetime) -> dict[str, int]:
    future = conn.execute(text("""SELECT b.id FROM bookings b JOIN booking_slots s ON s.id = b.slot_id
                                  WHERE b.parent_user_id = :u AND b.status <> 'cancelled' AND s.starts_at > :at
                                  ORDER BY b.id"""), {"u": user_id, "at": at}).scalars().all()
    for booking_id in future:
        cancel(conn, booking_id=booking_id, actor_user_id=user_id, as_centre=False, cutoff=timedelta(0), now=at)
    booking_ids = conn.execute(text("SELECT id FROM bookings WHERE parent_user_id = :u"),
                               {"u": user_id}).scalars().all()
    request_ids = conn.execute(text("SELECT id FROM emergency_requests WHERE parent_user_id = :u"),
                               {"u": user_id}).scalars().all()
    conn.execute(text("UPDATE bookings SET child_name = NULL, phone = '', updated_at = now() "
                      "WHERE parent_user_id = :u"), {"u": user_id})
    conn.execute(text("""UPDATE emergency_requests SET phone = '', lon = round(CAST(lon AS numeric), :d),
                                lat = round(CAST(lat AS numeric), :d),
                                status = CASE WHEN status = 'open' THEN 'cancelled' ELSE status END
                         WHERE parent_user_id = :u"""), {"u": user_id, "d": COARSE_DEGREES})
    keys = [f"booking:{i}:%" for i in booking_ids] + [f"emergency:{i}:%" for i in request_ids]
    texts = conn.execute(text("""UPDATE notification_outbox SET recipient = '', body = '',
                                        status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
                                        last_error = CASE WHEN status = 'pending' THEN 'account deleted'
                                                          ELSE last_error END
                                 WHERE idempotency_key LIKE ANY(:keys)"""), {"keys": keys}).rowcount
    return {"bookings_cancelled": len(future), "bookings_pseudonymised": len(booking_ids),
            "emergency_requests_pseudonymised": len(request_ids), "texts_erased": texts}

