"""A parent's sign-up, the same for the API and the portal's page: the answer never tells whether the address
already has an account (its owner gets a "someone tried to sign up" mail instead of a second account)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.auth import limits
from geo.auth.accounts import check_password, create_user, hash_password, normalise_email
from geo.auth.mail import send_confirmation, send_signup_notice
from geo.auth.policy import Role
from geo.errors import Conflict
from geo.settings import Settings
from geo.validation import personal_text


def sign_up(conn: Connection, settings: Settings, *, email: str, password: str, display_name: str | None,
            client_ip: str | None) -> None:
    """Create an unconfirmed parent account and queue its confirmation mail, or, when the address has an account,
    queue a notice to its owner after the same work. ``InvalidQuery`` for a bad address, name or weak password,
    ``RateLimited`` past the sign-ups allowed from one client address (docs/accounts.md)."""
    limits.check_signup(conn, settings, client_ip=client_ip)
    email = normalise_email(email)
    name = personal_text(display_name, param="display_name")
    check_password(password, user_inputs=(email, name))
    existing = conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email}).scalar()
    if existing is not None:
        hash_password(password, user_inputs=(email,))  # the same work as a new account: no timing tell
        if limits.check_account_mail(conn, settings, email=email):
            send_signup_notice(conn, user_id=int(existing), email=email)
        return
    try:
        user_id = create_user(conn, email=email, password=password, role=Role.parent, display_name=name,
                              email_confirmed=False)
    except Conflict:  # a concurrent sign-up with the address won: the same answer
        return
    if limits.check_account_mail(conn, settings, email=email):
        send_confirmation(conn, user_id=user_id, email=email)
