"""Users, argon2 passwords, sessions and bearer tokens, and login throttling.

Secrets (session cookies, bearer tokens, CSRF tokens) are 256-bit random strings handed to the client once;
the database keeps only their SHA-256, so a leaked table does not let anyone log in. Passwords are hashed
with argon2id (argon2-cffi defaults) and rehashed on login when the parameters change.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from zxcvbn import zxcvbn

from geo.auth.audit import audit
from geo.auth.policy import Role, Subject
from geo.errors import Conflict, Forbidden, InvalidQuery, NotFound, TooManyAttempts, Unauthenticated
from geo.settings import Settings
from geo.validation import personal_text

_hasher = PasswordHasher()
# A hash of a random password, verified against when the e-mail is unknown so that timing does not tell.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10
# zxcvbn's score (0 "too guessable" to 4 "very unguessable", offline, with its dictionaries of common and
# breached passwords, names and words): a password must reach this (docs/accounts.md).
MIN_PASSWORD_SCORE = 3
# Only this many leading characters are estimated (zxcvbn's time grows with length; longer ones rarely fail).
_SCORED_CHARS = 100
# Words of this service an attacker would try first.
_SITE_WORDS = ("dolbom", "돌봄", "어린이집", "childcare", "seoul", "서울")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request, with the token it came with."""

    user_id: int
    email: str
    role: Role
    district_code: str | None
    facility_ids: frozenset[int]
    token_id: int | None = None
    token_kind: str | None = None
    csrf_hash: str | None = None
    # False until a signed-up parent confirms the e-mail (docs/accounts.md): they may read, not act.
    email_confirmed: bool = True

    @property
    def subject(self) -> Subject:
        """The policy's view of this user."""
        return Subject(user_id=self.user_id, role=self.role, facility_ids=self.facility_ids,
                       district_code=self.district_code)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued secret (shown once) and its row id; ``csrf`` only for sessions."""

    token_id: int
    secret: str
    kind: str
    expires_at: datetime
    csrf: str | None = None


def sha256_hex(value: str) -> str:
    """Hex SHA-256 of a UTF-8 string (how token secrets are stored)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def check_password(password: str, *, user_inputs: tuple[str | None, ...] = (), param: str = "password") -> None:
    """Refuse a short or guessable password (``InvalidQuery`` naming ``param``, with zxcvbn's advice).

    At least ``MIN_PASSWORD_LENGTH`` characters and a zxcvbn score of ``MIN_PASSWORD_SCORE``, estimated offline
    against common and breached passwords, keyboard patterns, repeats, dates, this service's name and the
    account's own data (``user_inputs``: e-mail, its parts, display name).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidQuery(f"password must have at least {MIN_PASSWORD_LENGTH} characters", param=param)
    inputs: list[str] = list(_SITE_WORDS)
    for value in user_inputs:
        if value:
            inputs.append(value)
            inputs.extend(part for part in re.split(r"[@.\s_+-]+", value) if len(part) >= 3)
    result = zxcvbn(password[:_SCORED_CHARS], user_inputs=inputs)
    if result["score"] < MIN_PASSWORD_SCORE:
        feedback = result.get("feedback") or {}
        advice = " ".join(x for x in [feedback.get("warning") or "", *feedback.get("suggestions", [])] if x)
        raise InvalidQuery(f"this password is too easy to guess (strength {result['score']} of 4, at least "
                           f"{MIN_PASSWORD_SCORE} needed). {advice or 'Use a few uncommon words.'}".strip(),
                           param=param, strength=int(result["score"]), min_strength=MIN_PASSWORD_SCORE)


def hash_password(password: str, *, user_inputs: tuple[str | None, ...] = (), param: str = "password") -> str:
    """argon2id hash of ``password`` after ``check_password``."""
    check_password(password, user_inputs=user_inputs, param=param)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False on any malformed hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    """Trimmed, lower-cased e-mail; ``InvalidQuery`` when it is not one."""
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise InvalidQuery(f"not an e-mail address: {email!r}", param="email")
    return value


def create_user(conn: Connection, *, email: str, password: str, role: Role | str,
                display_name: str | None = None, district_code: str | None = None,
                facility_codes: list[str] | None = None, actor_user_id: int | None = None,
                email_confirmed: bool = True) -> int:
    """Create an account and return its id (audited; the password hash is never in the audit row).

    Accounts created by an admin or the CLI are confirmed; a parent's own sign-up passes
    ``email_confirmed=False`` until the confirmation mail's token comes back.

    Staff need at least one centre (by 어린이집코드), officers a 구 (5-digit code or name), other roles neither.

    Raises
    ------
    InvalidQuery
        Bad e-mail, short password, a display name holding a 주민등록번호, or bindings that do not fit the role.
    NotFound
        An unknown centre code or 구.
    Conflict
        The e-mail is already registered.
    """
    role = Role(role)
    email_n = normalise_email(email)
    display_name = personal_text(display_name, param="display_name")
    codes = sorted(set(facility_codes or []))
    if role is Role.centre_staff and not codes:
        raise InvalidQuery("centre staff must be bound to at least one centre", param="facility_codes")
    if role is not Role.centre_staff and codes:
        raise InvalidQuery(f"role {role.value} is not bound to centres", param="facility_codes")
    if role is Role.district_officer and not district_code:
        raise InvalidQuery("a district officer must be bound to a 구", param="district_code")
    if role is not Role.district_officer and district_code:
        raise InvalidQuery(f"role {role.value} is not bound to a 구", param="district_code")
    district = None
    if district_code:
        district = conn.execute(text("SELECT code FROM districts WHERE code = :d OR name = :d ORDER BY code LIMIT 1"),
                                {"d": district_code.strip()}).scalar_one_or_none()
        if district is None:
            raise NotFound(f"unknown 구: {district_code}", param="district_code")
    facility_ids: list[int] = []
    if codes:
        rows = conn.execute(text("SELECT id, code FROM facilities WHERE code = ANY(:codes)"), {"codes": codes}).all()
        missing = sorted(set(codes) - {r.code for r in rows})
        if missing:
            raise NotFound(f"unknown centre code(s): {', '.join(missing)}", param="facility_codes")
        facility_ids = sorted(r.id for r in rows)
    if display_name is not None:
        display_name = personal_text(display_name, param="display_name")
    pw_hash = hash_password(password, user_inputs=(email_n, display_name))
    try:
        with conn.begin_nested():
            user_id = int(conn.execute(
                text("INSERT INTO users (email, password_hash, role, display_name, district_code, email_confirmed_at) "
                     "VALUES (:email, :pw, :role, :name, :district, CASE WHEN :confirmed THEN now() END) "
                     "RETURNING id"),
                {"email": email_n, "pw": pw_hash, "role": role.value, "name": display_name, "district": district,
                 "confirmed": email_confirmed},
            ).scalar_one())
    except IntegrityError as exc:
        raise Conflict(f"e-mail already registered: {email_n}", param="email") from exc
    for fid in facility_ids:
        conn.execute(text("INSERT INTO user_centres (user_id, facility_id) VALUES (:u, :f)"), {"u": user_id, "f": fid})
    audit(conn, actor_user_id=actor_user_id if actor_user_id is not None else user_id, action="user.create",
          entity="users", entity_id=user_id, before=None,
          after={"email": email_n, "role": role.value, "display_name": display_name, "district_code": district,
                 "facility_codes": codes})
    return user_id


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """Public fields of a user (no hashes), with the centre codes they are bound to."""
    row = conn.execute(text("""
        SELECT u.id, u.email, u.role, u.display_name, u.district_code, u.disabled, u.verified_name,
               u.verified_birth_date, u.verified_phone, u.identity_provider, u.verified_at, u.created_at,
               u.email_confirmed_at,
               coalesce(array_agg(f.code ORDER BY f.code) FILTER (WHERE f.code IS NOT NULL), '{}') AS facility_codes
        FROM users u LEFT JOIN user_centres uc ON uc.user_id = u.id LEFT JOIN facilities f ON f.id = uc.facility_id
        WHERE u.id = :id GROUP BY u.id
    """), {"id": user_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no user {user_id}")
    return dict(row)


# From this many times ``login_ip_max_failures`` failures, an address is refused for every account.
ADDRESS_HARD_FACTOR = 10


def _throttle(conn: Connection, settings: Settings, email: str, client_ip: str | None) -> None:
    """Raise ``TooManyAttempts`` while the account or the client address has too many recent failures.

    The account's failures count from every address (naming another address in a header gains nothing). An
    address past ``login_ip_max_failures`` is refused for the accounts that have failed from it (a guesser gets
    no second try at any account), but not for the others: behind a proxy that every user shares, one guesser
    must not lock everybody out. Past ``ADDRESS_HARD_FACTOR`` times that, the address is refused outright.
    """
    window = timedelta(minutes=settings.auth.login_lockout_minutes)
    row = conn.execute(text("""
        SELECT count(*) FILTER (WHERE email = :email) AS by_email,
               max(at) FILTER (WHERE email = :email) AS last_email,
               count(*) FILTER (WHERE client_ip = :ip) AS by_ip,
               count(*) FILTER (WHERE client_ip = :ip AND email = :email) AS by_pair,
               max(at) FILTER (WHERE client_ip = :ip) AS last_ip
        FROM login_failures WHERE at > now() - :window AND (email = :email OR client_ip = :ip)
    """), {"email": email, "ip": client_ip, "window": window}).one()
    now = datetime.now(UTC)
    if row.by_email >= settings.auth.login_max_failures:
        retry = max(1, int((row.last_email + window - now).total_seconds()))
        raise TooManyAttempts(f"too many failed logins for this account; try again in {retry} s",
                              retry_after_s=retry)
    ip_max = settings.auth.login_ip_max_failures
    if client_ip is not None and (row.by_ip >= ip_max * ADDRESS_HARD_FACTOR
                                  or (row.by_ip >= ip_max and row.by_pair > 0)):
        retry = max(1, int((row.last_ip + window - now).total_seconds()))
        raise TooManyAttempts(f"too many failed logins from this address; try again in {retry} s",
                              retry_after_s=retry)


def authenticate(conn: Connection, settings: Settings, *, email: str, password: str,
                 client_ip: str | None = None) -> int:
    """Check credentials and return the user id; failures are recorded (committed by the caller's
    transaction, so the caller must commit even when this raises ``Unauthenticated``).

    Raises
    ------
    TooManyAttempts
        ``login_max_failures`` failures for this e-mail (or ``login_ip_max_failures`` from this address)
        within ``login_lockout_minutes``; checked before the password, so a locked account stays locked
        even with the right password.
    Unauthenticated
        Unknown e-mail, wrong password or disabled account (one message for all three).
    """
    email_n = email.strip().lower()
    _throttle(conn, settings, email_n, client_ip)
    row = conn.execute(text("SELECT id, password_hash, disabled FROM users WHERE email = :e"), {"e": email_n}).first()
    ok = verify_password(row.password_hash if row else _DUMMY_HASH, password)
    if row is None or not ok or row.disabled:
        conn.execute(text("INSERT INTO login_failures (email, client_ip) VALUES (:e, :ip)"),
                     {"e": email_n, "ip": client_ip})
        raise Unauthenticated("wrong e-mail or password")
    conn.execute(text("DELETE FROM login_failures WHERE email = :e"), {"e": email_n})
    if _hasher.check_needs_rehash(row.password_hash):
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                     {"h": _hasher.hash(password), "id": row.id})
    return int(row.id)


def issue_token(conn: Connection, settings: Settings, *, user_id: int, kind: str,
                label: str | None = None) -> IssuedToken:
    """Create a session (``kind="session"``, with a CSRF token) or a bearer token for ``user_id``."""
    if kind not in ("session", "bearer"):
        raise InvalidQuery(f"unknown token kind {kind!r}", param="kind")
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32) if kind == "session" else None
    ttl = (timedelta(hours=settings.auth.session_ttl_hours) if kind == "session"
           else timedelta(days=settings.auth.token_ttl_days))
    expires = datetime.now(UTC) + ttl
    token_id = int(conn.execute(
        text("INSERT INTO auth_tokens (user_id, kind, token_hash, csrf_hash, label, expires_at) "
             "VALUES (:u, :k, :h, :c, :l, :x) RETURNING id"),
        {"u": user_id, "k": kind, "h": sha256_hex(secret), "c": sha256_hex(csrf) if csrf else None,
         "l": label, "x": expires},
    ).scalar_one())
    audit(conn, actor_user_id=user_id, action=f"{kind}.create", entity="auth_tokens", entity_id=token_id,
          before=None, after={"kind": kind, "label": label, "expires_at": expires.isoformat()})
    return IssuedToken(token_id=token_id, secret=secret, kind=kind, expires_at=expires, csrf=csrf)


def login(conn: Connection, settings: Settings, *, email: str, password: str, kind: str,
          client_ip: str | None = None, label: str | None = None) -> IssuedToken:
    """``authenticate`` then ``issue_token``."""
    user_id = authenticate(conn, settings, email=email, password=password, client_ip=client_ip)
    return issue_token(conn, settings, user_id=user_id, kind=kind, label=label)


def resolve_token(conn: Connection, secret: str, *, kind: str) -> Principal:
    """The user behind a live (unexpired, unrevoked) token of ``kind``; ``Unauthenticated`` otherwise."""
    row = conn.execute(text("""
        SELECT t.id AS token_id, t.kind, t.csrf_hash, u.id, u.email, u.role, u.district_code,
               u.email_confirmed_at IS NOT NULL AS email_confirmed,
               coalesce(array_agg(uc.facility_id) FILTER (WHERE uc.facility_id IS NOT NULL), '{}') AS facility_ids
        FROM auth_tokens t JOIN users u ON u.id = t.user_id
        LEFT JOIN user_centres uc ON uc.user_id = u.id
        WHERE t.token_hash = :h AND t.kind = :kind AND t.revoked_at IS NULL AND t.expires_at > now()
          AND NOT u.disabled
        GROUP BY t.id, u.id
    """), {"h": sha256_hex(secret), "kind": kind}).first()
    if row is None:
        raise Unauthenticated(f"{'session' if kind == 'session' else 'token'} is invalid, expired or revoked")
    return Principal(user_id=row.id, email=row.email, role=Role(row.role), district_code=row.district_code,
                     facility_ids=frozenset(row.facility_ids), token_id=row.token_id, token_kind=row.kind,
                     csrf_hash=row.csrf_hash, email_confirmed=bool(row.email_confirmed))


def revoke_token(conn: Connection, *, token_id: int, actor_user_id: int) -> None:
    """Revoke one token (logout, or a user revoking an API token); audited."""
    row = conn.execute(text("UPDATE auth_tokens SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL "
                            "RETURNING kind, label"), {"id": token_id}).first()
    if row is not None:
        audit(conn, actor_user_id=actor_user_id, action=f"{row.kind}.revoke", entity="auth_tokens",
              entity_id=token_id, before={"revoked": False}, after={"revoked": True})


def revoke_user_token(conn: Connection, *, user_id: int, token_id: int) -> None:
    """Revoke one of ``user_id``'s own tokens; ``NotFound`` for a token of someone else."""
    owner = conn.execute(text("SELECT user_id FROM auth_tokens WHERE id = :id"), {"id": token_id}).scalar_one_or_none()
    if owner != user_id:
        raise NotFound(f"no token {token_id} of this user")
    revoke_token(conn, token_id=token_id, actor_user_id=user_id)


def list_tokens(conn: Connection, *, user_id: int) -> list[dict[str, Any]]:
    """The user's tokens (never the secrets)."""
    rows = conn.execute(text("SELECT id, kind, label, created_at, expires_at, revoked_at FROM auth_tokens "
                             "WHERE user_id = :u ORDER BY id"), {"u": user_id}).mappings().all()
    return [dict(r) for r in rows]


def revoke_all_tokens(conn: Connection, *, user_id: int, actor_user_id: int | None,
                      keep_token_id: int | None = None) -> int:
    """Revoke every live session and token of ``user_id`` but ``keep_token_id``; audited once with the count.

    Returns how many were revoked.
    """
    ids = conn.execute(text("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL "
                            "AND expires_at > now() AND id IS DISTINCT FROM :keep RETURNING id"),
                       {"u": user_id, "keep": keep_token_id}).scalars().all()
    audit(conn, actor_user_id=actor_user_id, action="token.revoke_all", entity="users", entity_id=user_id,
          before=None, after={"revoked": len(ids), "kept_token_id": keep_token_id})
    return len(ids)


def confirm_password(conn: Connection, settings: Settings, *, user_id: int, password: str,
                     client_ip: str | None = None) -> Any:
    """Check a logged-in user's password before a sensitive change (password change, account deletion) as a
    login would: refused while the account or address is locked out, and a wrong password is a recorded failure
    that counts towards the lockout (so a stolen session cannot guess the password without limit). Returns the
    locked ``users`` row (id, email, role, password_hash, display_name, verified_name).

    Raises
    ------
    TooManyAttempts
        Locked out (as for logins).
    Forbidden
        The password is wrong (``reason=wrong_password``); the failure is recorded, so the caller must commit.
    """
    row = conn.execute(text("SELECT id, email, role, password_hash, display_name, verified_name FROM users "
                            "WHERE id = :u FOR UPDATE"), {"u": user_id}).one()
    _throttle(conn, settings, row.email, client_ip)
    if not verify_password(row.password_hash, password):
        conn.execute(text("INSERT INTO login_failures (email, client_ip) VALUES (:e, :ip)"),
                     {"e": row.email, "ip": client_ip})
        raise Forbidden("the password is wrong", reason="wrong_password")
    return row


def change_password(conn: Connection, settings: Settings, *, user_id: int, current_password: str,
                    new_password: str, keep_token_id: int | None, client_ip: str | None = None) -> int:
    """Replace the password after checking the current one; every other session and token is revoked (the one
    the request came with, ``keep_token_id``, stays). Returns how many were revoked.

    Raises
    ------
    TooManyAttempts, Forbidden
        As ``confirm_password``: locked out, or the current password is wrong (a recorded failure).
    InvalidQuery
        The new password is too short or equal to the current one.
    """
    row = confirm_password(conn, settings, user_id=user_id, password=current_password, client_ip=client_ip)
    if new_password == current_password:
        raise InvalidQuery("the new password equals the current one", param="new_password")
    conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :u"),
                 {"h": hash_password(new_password, user_inputs=(row.email, row.display_name, row.verified_name),
                                     param="new_password"), "u": user_id})
    audit(conn, actor_user_id=user_id, action="user.password", entity="users", entity_id=user_id,
          before=None, after={"password": "changed"})
    return revoke_all_tokens(conn, user_id=user_id, actor_user_id=user_id, keep_token_id=keep_token_id)


def set_disabled(conn: Connection, *, user_id: int, disabled: bool, actor_user_id: int) -> dict[str, Any]:
    """Disable (or enable again) an account; a disabled user's sessions and tokens are revoked at once, and
    ``resolve_token`` refuses a disabled user's tokens anyway.

    Raises
    ------
    NotFound
        No such user.
    Conflict
        An admin disabling their own account (nobody could enable it again from that account).
    """
    before = conn.execute(text("SELECT disabled FROM users WHERE id = :u FOR UPDATE"),
                          {"u": user_id}).scalar_one_or_none()
    if before is None:
        raise NotFound(f"no user {user_id}")
    if disabled and user_id == actor_user_id:
        raise Conflict("you cannot disable your own account", reason="self")
    conn.execute(text("UPDATE users SET disabled = :d WHERE id = :u"), {"d": disabled, "u": user_id})
    audit(conn, actor_user_id=actor_user_id, action="user.disable" if disabled else "user.enable", entity="users",
          entity_id=user_id, before={"disabled": before}, after={"disabled": disabled})
    if disabled:
        revoke_all_tokens(conn, user_id=user_id, actor_user_id=actor_user_id)
    return get_user(conn, user_id)
