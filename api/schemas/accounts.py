"""Request/response bodies of the accounts, admin and vacancy endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo

from geo.errors import InvalidQuery
from geo.validation import has_control_characters, personal_text


def _no_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters such as NUL")
    return value


def _personal(max_length: int) -> AfterValidator:
    """``geo.validation.personal_text`` as a pydantic check (a 422 naming the field)."""

    def check(value: str, info: ValidationInfo) -> str:
        try:
            cleaned = personal_text(value, param=info.field_name or "value", max_length=max_length)
        except InvalidQuery as exc:
            raise ValueError(exc.detail) from None
        if cleaned is None:
            raise ValueError("must not be empty or only whitespace")
        return cleaned

    return AfterValidator(check)


# A query or path parameter free of control characters (PostgreSQL text cannot hold NUL).
NoControl = AfterValidator(_no_control_characters)
# Every text in a request body is bounded and free of control characters (PostgreSQL text cannot hold NUL).
Text = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_control_characters)]
Secret = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_control_characters)]
Code = Annotated[str, StringConstraints(max_length=50), AfterValidator(_no_control_characters)]
AgeKey = Annotated[str, StringConstraints(max_length=20), AfterValidator(_no_control_characters)]
# A person's or a child's name, a display name, a phone number: NFC, whitespace collapsed and stripped, never
# blank, before it is compared (one person, one account) or stored.
PersonalText = Annotated[str, StringConstraints(max_length=200), _personal(100)]
Phone = Annotated[str, StringConstraints(max_length=40), _personal(20)]
# Children or places of one age class: bounded so that sums stay integers PostgreSQL can store.
Count = Annotated[int, Field(le=100_000)]
Counts = Annotated[dict[AgeKey, Count], Field(max_length=20)]


class SignupIn(BaseModel):
    """A parent signing up."""

    model_config = ConfigDict(extra="forbid")
    email: Text
    password: Secret = Field(min_length=1)
    display_name: PersonalText | None = None


class LoginIn(BaseModel):
    """Credentials."""

    model_config = ConfigDict(extra="forbid")
    email: Text
    password: Secret


class TokenLoginIn(LoginIn):
    """Credentials plus a label for the API token."""

    label: Text | None = None


class NewTokenIn(BaseModel):
    """A new API token for the logged-in user."""

    model_config = ConfigDict(extra="forbid")
    label: Text | None = None


class SessionOut(BaseModel):
    """A web session was opened (the session secret is only in the HttpOnly cookie)."""

    csrf_token: str
    expires_at: datetime


class TokenOut(BaseModel):
    """A bearer token, shown once."""

    id: int
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class SignupAcceptedOut(BaseModel):
    """The one answer to a sign-up, whether or not the address already has an account."""

    status: str = Field(examples=["check_your_mail"])
    detail: str


class ConfirmEmailIn(BaseModel):
    """The token of a confirmation mail."""

    model_config = ConfigDict(extra="forbid")
    token: Secret = Field(min_length=1)


class PasswordResetIn(BaseModel):
    """Ask for a password-reset mail."""

    model_config = ConfigDict(extra="forbid")
    email: Text


class PasswordResetConfirmIn(BaseModel):
    """The token of a reset mail and the new password."""

    model_config = ConfigDict(extra="forbid")
    token: Secret = Field(min_length=1)
    new_password: Secret = Field(min_length=1)


class UserOut(BaseModel):
    """An account (never hashes)."""

    id: int
    email: str
    role: str
    display_name: str | None
    district_code: str | None
    facility_codes: list[str]
    disabled: bool = False
    verified_name: str | None = None
    verified_birth_date: date | None = None
    verified_phone: str | None = None
    identity_provider: str | None = None
    verified_at: datetime | None = None
    email_confirmed_at: datetime | None = None
    created_at: datetime


class UserCreateIn(BaseModel):
    """An admin creating staff, an officer, an admin (or a parent)."""

    model_config = ConfigDict(extra="forbid")
    email: Text
    password: Secret
    role: Literal["parent", "centre_staff", "district_officer", "city_admin"]
    display_name: PersonalText | None = None
    district_code: Text | None = Field(default=None, description="구 code or name, district officers only")
    facility_codes: list[Code] = Field(default_factory=list, max_length=100,
                                       description="어린이집코드 list, centre staff only")


class IdentityResetIn(BaseModel):
    """A city admin resetting an account's 본인인증 (e.g. a guardian change), with the reason for the audit log."""

    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(description="why (a complaint or case number); kept in the audit log")


class IdentityStartOut(BaseModel):
    """Where to verify identity."""

    provider: str
    url: str
    state: str


class LocalIdentityIn(BaseModel):
    """The local test provider's form."""

    model_config = ConfigDict(extra="forbid")
    state: Text
    name: PersonalText
    birth_date: Text = Field(description="YYYY-MM-DD")
    phone: Phone | None = None


class VacancyReportBody(BaseModel):
    """A centre's report: children enrolled by class group, free places by age 0-5, optionally class counts.

    Keys: ``"0"``..``"5"`` (and ``mixed_infant``, ``mixed_toddler``, ``special`` for enrolment and classes)."""

    model_config = ConfigDict(extra="forbid")
    enrolled_by_age: Counts
    free_by_age: Counts
    classes_by_age: Counts | None = None


class VacancyEventOut(BaseModel):
    """An accepted report as published on the stream."""

    seq: int
    facility_id: int
    code: str
    name: str
    district_code: str | None
    lon: float
    lat: float
    capacity: int | None
    enrolled: int
    free_by_age: dict[str, int]
    enrolled_by_age: dict[str, int] | None = Field(default=None, description="Children by class group")
    classes_by_age: dict[str, int] | None = Field(default=None, description="Classes by class group")
    places_by_age: dict[str, int] | None = Field(
        default=None, description="Places by class group (classes x legal children per class)")
    free_by_class: dict[str, int] | None = Field(
        default=None, description="Free places by class group (geo.domain.free_places_by_class)")
    reported_at: datetime


class VacancyConflictOut(BaseModel):
    """A snapshot figure not applied because the centre reported it live after the snapshot's data date."""

    id: int
    field: str = Field(description="enrolled | enrolled_by_age | free_by_age | classes_by_age")
    snapshot_value: Any = Field(description="What the official snapshot said")
    live_value: Any = Field(description="What the centre reported (kept)")
    snapshot_date: date | None
    reported_at: datetime
    import_run_id: int | None
    source_name: str | None = Field(description="The imported file")
    recorded_at: datetime


class CentreVacancyOut(BaseModel):
    """Current vacancy of a centre, when it last reported and whether that is stale."""

    code: str
    name: str
    district_code: str | None
    capacity: int | None
    enrolled: int | None
    free_by_age: dict[str, int] | None
    last_reported_at: datetime | None
    stale: bool


class ReportHistoryOut(BaseModel):
    """One past report with its author."""

    id: int
    reported_at: datetime
    enrolled: int
    capacity: int | None
    enrolled_by_age: dict[str, int]
    free_by_age: dict[str, int]
    classes_by_age: dict[str, int] | None
    author_user_id: int | None
    author_email: str | None


class AuditOut(BaseModel):
    """An audit row."""

    id: int
    at: datetime
    actor_user_id: int | None
    action: str
    entity: str
    entity_id: str | None
    before: dict | None
    after: dict | None


class PasswordChangeIn(BaseModel):
    """The current password and the new one."""

    model_config = ConfigDict(extra="forbid")
    current_password: Secret
    new_password: Secret = Field(min_length=1)


class RevokedOut(BaseModel):
    """How many other sessions and tokens were revoked."""

    revoked: int


class AccountDeleteIn(BaseModel):
    """The account's password, to confirm the deletion."""

    model_config = ConfigDict(extra="forbid")
    password: Secret


class AccountDeletedOut(BaseModel):
    """What the deletion did, by kind of data (docs/privacy.md)."""

    entries_withdrawn: int
    bookings_cancelled: int
    bookings_pseudonymised: int
    emergency_requests_pseudonymised: int
    texts_erased: int
    children_deleted: int
    audit_rows_pseudonymised: int
    login_failures_deleted: int
    tokens_deleted: int
