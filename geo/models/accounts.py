"""Tables of accounts, roles, sessions/tokens, the audit trail and live vacancy reports (migration 0006).

Imported by ``geo.models`` so that one ``Base.metadata`` describes the whole schema.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base


class User(Base):
    """An account: parent, centre staff (bound to centres), district officer (bound to a 구) or city admin.

    Identity data is only what a 본인인증 provider returned (name, birth date, phone, a hash of the CI); a
    주민등록번호 is never stored.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str | None] = mapped_column(Text)
    # District officers: the 구 they read (5-digit code); null for every other role.
    district_code: Mapped[str | None] = mapped_column(String(5), ForeignKey("districts.code"))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    verified_name: Mapped[str | None] = mapped_column(Text)
    verified_birth_date: Mapped[date | None] = mapped_column(Date)
    verified_phone: Mapped[str | None] = mapped_column(Text)
    # HMAC-SHA256 of the provider's CI (연계정보), hex; identifies a person across accounts without the CI.
    ci_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    identity_provider: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When the owner proved the e-mail is theirs (migration 0011); NULL: signed up, mail not confirmed yet.
    # Accounts inserted without it (admin, CLI, seed) are confirmed.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("role IN ('parent', 'centre_staff', 'district_officer', 'city_admin')", name="ck_users_role"),
        CheckConstraint("(role = 'district_officer') = (district_code IS NOT NULL)", name="ck_users_district"),
    )


class UserCentre(Base):
    """A centre a staff account may report for."""

    __tablename__ = "user_centres"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)


class AuthToken(Base):
    """A web session (cookie) or an API bearer token; only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sessions only: SHA-256 of the synchronizer CSRF token sent in X-CSRF-Token on unsafe requests.
    csrf_hash: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("kind IN ('session', 'bearer')", name="ck_auth_tokens_kind"),)


class LoginFailure(Base):
    """A failed login, by e-mail and client address; recent ones lock the account / throttle the address."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(Text, index=True)
    client_ip: Mapped[str | None] = mapped_column(Text, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccountMailToken(Base):
    """A single-use token mailed to an account: e-mail confirmation or password reset (SHA-256 stored)."""

    __tablename__ = "account_mail_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("purpose IN ('confirm_email', 'password_reset')",
                                      name="ck_account_mail_tokens_purpose"),)


class RateLimitWindow(Base):
    """One fixed-window counter of ``geo.auth.limits``: hits of a key (SHA-256, never the raw address, phone
    or person) in a bucket since ``window_start``."""

    __tablename__ = "rate_limits"

    bucket: Mapped[str] = mapped_column(Text, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """One write: who, when, what (action, entity) and the previous and new values."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(Text)
    entity: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)


class VacancyReport(Base):
    """A centre's own report of enrolment and free places by age class, with its author."""

    __tablename__ = "vacancy_reports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enrolled_by_age: Mapped[dict] = mapped_column(JSONB)
    free_by_age: Mapped[dict] = mapped_column(JSONB)
    classes_by_age: Mapped[dict | None] = mapped_column(JSONB)
    capacity: Mapped[int | None] = mapped_column(Integer)
    enrolled: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_vacancy_reports_facility_reported", "facility_id", "reported_at"),)


class VacancyConflict(Base):
    """A figure of an official snapshot not applied because the centre reported it live after the snapshot's
    data date (migration 0011): both values, for the centre's staff and the import report."""

    __tablename__ = "vacancy_conflicts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), index=True)
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"))
    vacancy_report_id: Mapped[int | None] = mapped_column(ForeignKey("vacancy_reports.id", ondelete="SET NULL"))
    # enrolled, enrolled_by_age, free_by_age or classes_by_age.
    field: Mapped[str] = mapped_column(String(40))
    snapshot_value: Mapped[Any | None] = mapped_column(JSONB)
    live_value: Mapped[Any | None] = mapped_column(JSONB)
    snapshot_date: Mapped[date | None] = mapped_column(Date)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VacancyEvent(Base):
    """A pushed vacancy change; ``seq`` is the SSE event id a reconnecting client resumes after."""

    __tablename__ = "vacancy_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"), index=True)
    facility_code: Mapped[str] = mapped_column(String(40))
    district_code: Mapped[str | None] = mapped_column(String(5))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
