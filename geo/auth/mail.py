"""Account mails: e-mail confirmation after sign-up, "someone tried to sign up with your address", and password
reset; each confirmation or reset carries a single-use token (only its SHA-256 is stored, in
``account_mail_tokens``).

Mails go through the notification outbox (``notification_outbox``, delivered by ``dolbom notify`` like texts;
the file sink in development) with the e-mail address as recipient. The rows are written here rather than
through ``geo.booking.outbox`` because ``geo.booking`` depends on ``geo.auth``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Connection, text

from geo.auth.accounts import check_password, hash_password, revoke_all_tokens, sha256_hex
from geo.auth.audit import audit
from geo.errors import InvalidQuery

CONFIRM_TTL = timedelta(hours=48)
RESET_TTL = timedelta(hours=1)

MAILS: dict[str, str] = {
    "confirm_email": ("[돌봄 dolbom] 이메일 주소를 확인해 주세요 / Confirm your e-mail address\n"
                      "POST /auth/confirm-email {{\"token\": \"{token}\"}}\n"
                      "이 코드는 48시간 동안 한 번만 쓸 수 있습니다. This code works once, for 48 hours."),
    "signup_existing": ("[돌봄 dolbom] 누군가 이 주소로 가입하려 했습니다 / Someone tried to sign up with your "
                        "address.\n이미 계정이 있습니다. 비밀번호를 잊으셨다면 POST /auth/password-reset 로 "
                        "재설정하세요. You already have an account; if you forgot the password, reset it with "
                        "POST /auth/password-reset. If it was not you, nothing changed."),
    "password_reset": ("[돌봄 dolbom] 비밀번호 재설정 / Reset your password\n"
                       "POST /auth/password-reset/confirm {{\"token\": \"{token}\", \"new_password\": \"...\"}}\n"
                       "이 코드는 1시간 동안 한 번만 쓸 수 있습니다. This code works once, for 1 hour. "
                       "If you did not ask for it, ignore this mail."),
}


def queue_mail(conn: Connection, *, key: str, email: str, template: str, **params: object) -> None:
    """Queue a mail to ``email`` in ``conn``'s transaction (once per ``key``)."""
    conn.execute(text(
        "INSERT INTO notification_outbox (idempotency_key, recipient, lang, template, body) "
        "VALUES (:key, :to, 'ko', :template, :body) ON CONFLICT (idempotency_key) DO NOTHING"),
        {"key": key[:64], "to": email, "template": template, "body": MAILS[template].format(**params)})


def issue_mail_token(conn: Connection, *, user_id: int, purpose: str, ttl: timedelta) -> str:
    """A new single-use token for ``user_id`` (returned once; earlier unused tokens of ``purpose`` lapse)."""
    conn.execute(text("UPDATE account_mail_tokens SET used_at = now() WHERE user_id = :u AND purpose = :p "
                      "AND used_at IS NULL"), {"u": user_id, "p": purpose})
    token = secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO account_mail_tokens (user_id, purpose, token_hash, expires_at) "
                      "VALUES (:u, :p, :h, now() + :ttl)"),
                 {"u": user_id, "p": purpose, "h": sha256_hex(token), "ttl": ttl})
    return token


def _use_token(conn: Connection, token: str, *, purpose: str) -> int:
    """Spend a live token of ``purpose``; returns its user id. ``InvalidQuery`` (param ``token``) otherwise."""
    user_id = conn.execute(text(
        "UPDATE account_mail_tokens t SET used_at = now() FROM users u WHERE t.token_hash = :h "
        "AND t.purpose = :p AND t.used_at IS NULL AND t.expires_at > now() AND u.id = t.user_id AND NOT u.disabled "
        "RETURNING t.user_id"), {"h": sha256_hex(token), "p": purpose}).scalar()
    if user_id is None:
        raise InvalidQuery("this link is invalid, expired or already used; ask for a new one", param="token")
    return int(user_id)


def send_confirmation(conn: Connection, *, user_id: int, email: str) -> None:
    """Queue the confirmation mail of a new account."""
    token = issue_mail_token(conn, user_id=user_id, purpose="confirm_email", ttl=CONFIRM_TTL)
    queue_mail(conn, key=f"mail:confirm:{sha256_hex(token)[:32]}", email=email, template="confirm_email",
               token=token)


def send_signup_notice(conn: Connection, *, user_id: int, email: str) -> None:
    """Tell the owner of ``email`` that someone tried to sign up with it (instead of telling the caller)."""
    queue_mail(conn, key=f"mail:signup-again:{secrets.token_hex(16)}", email=email, template="signup_existing")


def confirm_email(conn: Connection, token: str) -> int:
    """Confirm the account of a confirmation token; returns the user id (audited)."""
    user_id = _use_token(conn, token.strip(), purpose="confirm_email")
    conn.execute(text("UPDATE users SET email_confirmed_at = coalesce(email_confirmed_at, now()) WHERE id = :u"),
                 {"u": user_id})
    audit(conn, actor_user_id=user_id, action="user.confirm_email", entity="users", entity_id=user_id,
          before=None, after={"email_confirmed": True})
    return user_id


def start_password_reset(conn: Connection, *, email: str) -> bool:
    """Queue a reset mail when ``email`` has an enabled account; False (and nothing queued) otherwise. The caller
    answers the same either way."""
    row = conn.execute(text("SELECT id, email FROM users WHERE email = :e AND NOT disabled"),
                       {"e": email.strip().lower()}).first()
    if row is None:
        return False
    token = issue_mail_token(conn, user_id=row.id, purpose="password_reset", ttl=RESET_TTL)
    queue_mail(conn, key=f"mail:reset:{sha256_hex(token)[:32]}", email=row.email, template="password_reset",
               token=token)
    return True


def finish_password_reset(conn: Connection, *, token: str, new_password: str) -> int:
    """Set a new password with a reset token: every session and token of the account is revoked, its login
    lockout cleared, and its e-mail counts as confirmed (the mail reached its owner). Returns how many sessions
    and tokens were revoked.

    Raises
    ------
    InvalidQuery
        ``param="token"``: invalid, expired or used; ``param="new_password"``: too weak.
    """
    # In a savepoint: a weak password does not spend the token.
    with conn.begin_nested():
        user_id = _use_token(conn, token.strip(), purpose="password_reset")
        row = conn.execute(text("SELECT email, display_name, verified_name FROM users WHERE id = :u FOR UPDATE"),
                           {"u": user_id}).one()
        check_password(new_password, user_inputs=(row.email, row.display_name, row.verified_name),
                       param="new_password")
    conn.execute(text("UPDATE users SET password_hash = :h, email_confirmed_at = coalesce(email_confirmed_at, now()) "
                      "WHERE id = :u"),
                 {"h": hash_password(new_password, user_inputs=(row.email,), param="new_password"), "u": user_id})
    conn.execute(text("UPDATE account_mail_tokens SET used_at = now() WHERE user_id = :u AND purpose = "
                      "'password_reset' AND used_at IS NULL"), {"u": user_id})
    conn.execute(text("DELETE FROM login_failures WHERE email = :e"), {"e": row.email})
    audit(conn, actor_user_id=user_id, action="user.password_reset", entity="users", entity_id=user_id,
          before=None, after={"password": "reset"})
    return revoke_all_tokens(conn, user_id=user_id, actor_user_id=user_id)
