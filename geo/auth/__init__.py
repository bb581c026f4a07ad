"""Accounts and roles (no HTTP): users, argon2 passwords, sessions and bearer tokens, login throttling, 본인인증
providers, the audit trail and the authorisation policy (``geo.auth.policy``, the one place rules live)."""

from geo.auth.accounts import (
    Principal,
    authenticate,
    create_user,
    get_user,
    issue_token,
    login,
    resolve_token,
    revoke_token,
    revoke_user_token,
)
from geo.auth.audit import audit
from geo.auth.policy import Role

__all__ = [
    "Principal",
    "Role",
    "audit",
    "authenticate",
    "create_user",
    "get_user",
    "issue_token",
    "login",
    "resolve_token",
    "revoke_token",
    "revoke_user_token",
]
