"""Settings read from the environment (and `.env`) by pydantic-settings; nothing connects at import.

The settings are grouped by concern (``settings.database.url``, ``settings.search.max_page_limit``, ...), but every
variable keeps its flat environment name (``DATABASE_URL``, ``DOLBOM_MAX_PAGE_LIMIT``, ...): each group field names
its variable as its ``validation_alias``, and ``Settings`` moves flat names into their groups before validating.
``Settings(DOLBOM_MAX_PAGE_LIMIT=2)`` and ``settings.updated(DOLBOM_MAX_PAGE_LIMIT=2)`` take the same names.
docs/settings.md lists every variable (a test keeps it in step with these models).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from geo.errors import DolbomError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Published in this repository: fine on a laptop, refused with DOLBOM_ENV=production.
DEVELOPMENT_CI_HASH_KEY = "dolbom-development-ci-key"
DEVELOPMENT_IDEMPOTENCY_HASH_KEY = "dolbom-development-idempotency-key"


def dolbom_home() -> Path:
    """Where ``.env`` and the data folder live: ``DOLBOM_HOME``; else the source checkout this package runs
    from (a directory with pyproject.toml, whatever the working directory); else ``$XDG_DATA_HOME/dolbom``
    (an installed package)."""
    if os.environ.get("DOLBOM_HOME"):
        return Path(os.environ["DOLBOM_HOME"]).expanduser().resolve()
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dolbom"


def _var(default: Any, env: str, description: str, *, secret: bool = False, shown_default: str | None = None,
         **constraints: Any) -> Any:
    """A group field read from the environment variable ``env`` (its validation alias); ``secret`` values are
    not repeated in error messages, ``shown_default`` is the default as docs/settings.md states it."""
    extra: dict[str, Any] | None = {"secret": secret, "shown_default": shown_default} \
        if secret or shown_default else None
    if callable(default):
        return Field(default_factory=default, validation_alias=env, description=description,
                     json_schema_extra=extra, **constraints)
    return Field(default=default, validation_alias=env, description=description, json_schema_extra=extra,
                 **constraints)


class _Group(BaseModel):
    """A group of settings: fields by name or by environment variable, nothing unknown."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class DatabaseSettings(_Group):
    """Where the database is and how the app's connections wait for it."""

    url: str | None = _var(None, "DATABASE_URL", "PostgreSQL URL of the database (libpq or SQLAlchemy form); "
                           "unset: the project-local cluster that `dolbom db up` provisions.", secret=True)
    direct_url: str | None = _var(None, "DOLBOM_DIRECT_DATABASE_URL", "With an external pooler "
                                  "(DOLBOM_PGBOUNCER=1 and DATABASE_URL): the PostgreSQL server itself, for LISTEN, "
                                  "migrations and imports.", secret=True,
                                  shown_default="DATABASE_URL")
    timeout_s: float = _var(5.0, "DOLBOM_DB_TIMEOUT_S", "Seconds to wait for a database connection before "
                            "answering 503 (also the connect timeout).", gt=0)
    read_pool_size: int = _var(10, "DOLBOM_READ_POOL_SIZE", "Connections of the API's async read pool, per "
                               "worker process.", ge=1)


class LocalClusterSettings(_Group):
    """The project-local PostgreSQL cluster (used when DATABASE_URL is unset)."""

    data_dir: Path = _var(lambda: dolbom_home() / ".dolbom", "DOLBOM_DATA_DIR",
                          "Data folder: the local cluster, its standbys, PgBouncer, notification sink.",
                          shown_default="$DOLBOM_HOME/.dolbom")
    pg_port: int = _var(54329, "DOLBOM_PG_PORT", "Port (of the unix socket) of the local cluster; local "
                        "standby N uses this plus N.", ge=1, le=65535 - 9)
    pg_database: str = _var("dolbom", "DOLBOM_PG_DATABASE", "Database name in the local cluster.", min_length=1)
    replicas: int = _var(0, "DOLBOM_PG_REPLICAS", "How many local standbys `dolbom db up` / `dolbom run` "
                         "provide beside the local primary.", ge=0, le=9)
    archive: bool = _var(True, "DOLBOM_PG_ARCHIVE", "Archive the local primary's WAL into the pgBackRest "
                         "repository in DOLBOM_DATA_DIR/backups (point-in-time recovery: `dolbom db restore --to`).")
    backup_retention_full: int = _var(2, "DOLBOM_BACKUP_RETENTION_FULL", "Full backups of the local cluster "
                                      "kept; older ones, their diff/incr backups and the WAL only they need are "
                                      "expired after each `dolbom db backup`.", ge=1, le=99)


class ServerSettings(_Group):
    """The API server (`dolbom run`)."""

    environment: Literal["development", "production"] = _var(
        "development", "DOLBOM_ENV", "`development` (a laptop: the `local` identity provider and the published "
        "development keys are allowed, and every page says so) or `production` (refuses to start with either).")
    host: str = _var("127.0.0.1", "DOLBOM_HOST", "Address the API listens on.", min_length=1)
    port: int = _var(8000, "DOLBOM_PORT", "Port the API listens on.", ge=1, le=65535)
    workers: int = _var(1, "DOLBOM_WORKERS", "API worker processes behind the one port (uvicorn's "
                        "multi-process mode); each has its own pools.", ge=1, le=64)
    public_url: str = _var("http://localhost:8000", "DOLBOM_PUBLIC_URL", "The site's address as people reach "
                           "it (scheme, host, port; no trailing slash): links in texts and mails, e.g. an "
                           "alert's unsubscribe link.", min_length=1)
    worker_header: bool = _var(False, "DOLBOM_WORKER_HEADER", "Name the answering worker process in an "
                               "`X-Dolbom-Worker: <pid>` response header (load-balancing checks).")
    max_body_bytes: int = _var(64 * 1024, "DOLBOM_MAX_BODY_BYTES", "Largest request body (bytes) a route "
                               "takes unless it needs more; a larger one is answered 413 before it is read.",
                               ge=1024)
    forwarded_allow_ips: str = _var("", "DOLBOM_FORWARDED_ALLOW_IPS", "Comma-separated addresses of the "
                                    "reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed "
                                    "(uvicorn's `forwarded_allow_ips`); empty: none, the client is the peer of "
                                    "the connection. Set it to your proxy's address (e.g. `127.0.0.1`) when one "
                                    "is in front.")
    search_fast_path: bool = _var(True, "DOLBOM_SEARCH_FAST_PATH", "Answer plain `GET /facilities/radius`, "
                                  "`/nearest` and `/area` searches before routing (`api/search_fast_path.py`: the "
                                  "same answers, ~1 ms less per search); off sends every search through FastAPI.")
    compress: bool = _var(True, "DOLBOM_COMPRESS", "gzip JSON, JavaScript, CSS and HTML answers for clients "
                          "that accept it (never vector tiles); off when a proxy in front compresses.")
    tile_versions_stale_s: float = _var(5.0, "DOLBOM_TILE_VERSIONS_STALE_S", "Tile versions are kept in "
                                        "memory, current through LISTEN on the database's change feed; while that "
                                        "listener is down a cached tile is served for at most this many seconds "
                                        "after the database last confirmed its version (the staleness bound, "
                                        "docs/layers.md).", gt=0)
    clock_offset_days: int = _var(0, "DOLBOM_CLOCK_OFFSET_DAYS", "Test only: the server's clock for dated public "
                                  "facts (which disclosures of violations are published) runs this many days "
                                  "ahead (negative: behind); refused in production.", ge=-36500, le=36500)


def _default_catchment_radius_m() -> dict[str, float]:
    # 가정 (home) centres serve their block; 국공립 draw from the whole neighbourhood.
    return {"national_public": 1500.0, "private": 1000.0, "home": 500.0, "workplace": 3000.0,
            "corporate_group": 1000.0, "social_welfare": 1500.0, "cooperative": 1000.0}


class SearchSettings(_Group):
    """Search limits, catchments and geocoding."""

    catchment_radius_m: dict[str, float] = _var(
        _default_catchment_radius_m, "DOLBOM_CATCHMENT_RADIUS_M", "Catchment radius (metres) by facility type "
        "(type value or Korean label), as JSON, for \"which centres' catchment contains my home\".")
    catchment_infant_factor: float = _var(0.7, "DOLBOM_CATCHMENT_INFANT_FACTOR", "Fraction of the catchment "
                                          "radius for infants (0-2세): parents walk with a pram.", gt=0, le=1)
    max_page_limit: int = _var(500, "DOLBOM_MAX_PAGE_LIMIT", "Largest `limit` (or `k`) a request may "
                               "ask for.", ge=1)
    max_radius_m: float = _var(50_000.0, "DOLBOM_MAX_RADIUS_M", "Largest radius or distance (metres) a "
                                "request may ask for.", gt=0)
    geocoder_url: str | None = _var(None, "DOLBOM_GEOCODER_URL", "Nominatim-compatible geocoder tried after "
                                    "the offline one; unset: offline only.")

    @field_validator("catchment_radius_m")
    @classmethod
    def _positive_radii(cls, radii: dict[str, float]) -> dict[str, float]:
        """Every catchment radius is a positive distance."""
        bad = [key for key, radius_m in radii.items() if not radius_m > 0]
        if bad:
            raise ValueError(f"radius must be greater than 0 (for {', '.join(bad)})")
        return radii


class ImportSettings(_Group):
    """Imports of official data files."""

    max_skip_ratio: float = _var(0.5, "DOLBOM_IMPORT_MAX_SKIP_RATIO", "An import stops (nothing written) once "
                                 "more than this share of the rows read was unusable.", ge=0.0, le=1.0)
    min_rows_for_ratio: int = _var(200, "DOLBOM_IMPORT_MIN_ROWS_FOR_RATIO", "Rows read before the skip ratio "
                                   "is checked.", ge=1)
    report_per_kind: int = _var(1000, "DOLBOM_IMPORT_REPORT_PER_KIND", "Issues of each kind an import report "
                                "keeps.", ge=1)
    location_exact_max_m: float = _var(150.0, "DOLBOM_IMPORT_LOCATION_EXACT_MAX_M", "A centre placed farther than "
                                       "this (metres) from its published point, or without a usable one, is shown "
                                       "with an approximate location (found by 구/동, not as a precise point).", gt=0)


class AuthSettings(_Group):
    """Accounts: web sessions, API tokens, login throttling."""

    session_ttl_hours: float = _var(12.0, "DOLBOM_SESSION_TTL_HOURS", "Lifetime of a web session (hours).", gt=0)
    token_ttl_days: float = _var(90.0, "DOLBOM_TOKEN_TTL_DAYS", "Lifetime of an API token (days).", gt=0)
    login_max_failures: int = _var(5, "DOLBOM_LOGIN_MAX_FAILURES", "Failed logins of one account before it "
                                   "is locked out.", ge=1)
    login_ip_max_failures: int = _var(50, "DOLBOM_LOGIN_IP_MAX_FAILURES", "Failed logins from one address "
                                      "after which it gets no second try at any account that failed from it; "
                                      "at ten times this the address is locked out for every account.", ge=1)
    login_lockout_minutes: float = _var(15.0, "DOLBOM_LOGIN_LOCKOUT_MINUTES", "How long a lockout lasts "
                                        "(minutes).", gt=0)
    cookie_secure: bool | None = _var(None, "DOLBOM_COOKIE_SECURE", "Mark cookies `Secure` (sent over HTTPS "
                                      "only): `true` always, `false` never; unset: per request, Secure unless it "
                                      "came over plain HTTP to localhost / 127.0.0.1 / ::1.")


class IdentitySettings(_Group):
    """본인인증 (identity verification)."""

    ci_hash_key: str = _var(DEVELOPMENT_CI_HASH_KEY, "DOLBOM_CI_HASH_KEY", "Key of the HMAC that turns a "
                            "provider's CI into the stored ci_hash; set it in production.", secret=True,
                            min_length=1)
    provider: Literal["local", "oidc"] = _var("local", "DOLBOM_IDENTITY_PROVIDER", "`local` (a test form) "
                                              "or `oidc` (OpenID Connect).")
    oidc_issuer: str | None = _var(None, "DOLBOM_OIDC_ISSUER", "OIDC issuer URL (discovery document).")
    oidc_client_id: str | None = _var(None, "DOLBOM_OIDC_CLIENT_ID", "OIDC client id.")
    oidc_client_secret: str | None = _var(None, "DOLBOM_OIDC_CLIENT_SECRET", "OIDC client secret.",
                                          secret=True)
    oidc_redirect_uri: str | None = _var(None, "DOLBOM_OIDC_REDIRECT_URI", "OIDC redirect URI registered "
                                         "with the provider.")


class VacancySettings(_Group):
    """Live vacancy."""

    stale_days: float = _var(7.0, "DOLBOM_VACANCY_STALE_DAYS", "A centre that has not reported for this many "
                             "days is flagged stale.", gt=0)
    stream_max_s: float = _var(3600.0, "DOLBOM_VACANCY_STREAM_MAX_S", "An SSE stream ends after this many "
                               "seconds; the client reconnects with Last-Event-ID and misses nothing.", gt=0)


class SyncSettings(_Group):
    """Daily sync from the official open APIs."""

    seoul_api_key: str | None = _var(None, "DOLBOM_SEOUL_API_KEY", "Key of the Seoul open data API.",
                                     secret=True)
    seoul_api_url: str = _var("http://openapi.seoul.go.kr:8088", "DOLBOM_SEOUL_API_URL", "Base URL of the "
                              "Seoul open data API.", min_length=1)
    national_api_key: str | None = _var(None, "DOLBOM_NATIONAL_API_KEY", "Key of the national (data.go.kr) "
                                        "childcare API.", secret=True)
    national_api_url: str = _var("https://apis.data.go.kr/childcare/basicinfo", "DOLBOM_NATIONAL_API_URL",
                                 "Base URL of the national childcare API.", min_length=1)
    page_size: int = _var(1000, "DOLBOM_SYNC_PAGE_SIZE", "Rows asked for per API page.", ge=1)
    timeout_s: float = _var(30.0, "DOLBOM_SYNC_TIMEOUT_S", "Timeout of one API request (seconds).", gt=0)
    retries: int = _var(2, "DOLBOM_SYNC_RETRIES", "Retries of a failed API request.", ge=0)


class BookingSettings(_Group):
    """Booking (holiday, night, 24-hour and hourly care)."""

    cancel_cutoff_hours: float = _var(2.0, "DOLBOM_BOOKING_CANCEL_CUTOFF_HOURS", "Parents may cancel until "
                                      "this many hours before the start.", ge=0)
    emergency_radius_m: float = _var(3_000.0, "DOLBOM_EMERGENCY_RADIUS_M", "Default radius (metres) of an "
                                     "emergency-care search.", gt=0)


class LimitsSettings(_Group):
    """Abuse limits (docs/accounts.md): fixed-window counters per account, per verified person, per client
    address and per phone number, shared by every worker process; a refusal is a 429 with Retry-After."""

    enabled: bool = _var(True, "DOLBOM_LIMITS_ENABLED", "Apply the limits below (off only for load tests).")
    signup_per_ip_hour: int = _var(10, "DOLBOM_LIMIT_SIGNUP_PER_IP_HOUR", "Sign-ups (and password-reset "
                                   "mails) from one client address per hour.", ge=1)
    signup_per_ip_day: int = _var(50, "DOLBOM_LIMIT_SIGNUP_PER_IP_DAY", "Sign-ups (and password-reset mails) "
                                  "from one client address per day.", ge=1)
    mail_per_account_day: int = _var(5, "DOLBOM_LIMIT_MAIL_PER_ACCOUNT_DAY", "Account mails (sign-up notices, "
                                     "confirmations, password resets) to one address per day.", ge=1)
    bookings_per_account_hour: int = _var(10, "DOLBOM_LIMIT_BOOKINGS_PER_ACCOUNT_HOUR", "Bookings of one "
                                          "account per hour.", ge=1)
    bookings_per_person_day: int = _var(20, "DOLBOM_LIMIT_BOOKINGS_PER_PERSON_DAY", "Bookings of one verified "
                                        "person (본인인증 CI) per day, all their accounts together.", ge=1)
    bookings_per_ip_hour: int = _var(60, "DOLBOM_LIMIT_BOOKINGS_PER_IP_HOUR", "Bookings from one client address "
                                     "per hour.", ge=1)
    emergency_per_account_hour: int = _var(3, "DOLBOM_LIMIT_EMERGENCY_PER_ACCOUNT_HOUR", "Emergency requests of "
                                           "one account per hour.", ge=1)
    emergency_per_person_day: int = _var(6, "DOLBOM_LIMIT_EMERGENCY_PER_PERSON_DAY", "Emergency requests of one "
                                         "verified person per day.", ge=1)
    emergency_per_ip_hour: int = _var(20, "DOLBOM_LIMIT_EMERGENCY_PER_IP_HOUR", "Emergency requests from one "
                                      "client address per hour.", ge=1)
    texts_per_phone_day: int = _var(20, "DOLBOM_LIMIT_TEXTS_PER_PHONE_DAY", "Texts a parent's request may "
                                    "queue to one phone number per day.", ge=1)


class IdempotencySettings(_Group):
    """Idempotency-Key on creating requests (docs/search-api.md)."""

    ttl_hours: float = _var(24.0, "DOLBOM_IDEMPOTENCY_TTL_HOURS", "How long the first response of a request "
                            "sent with an Idempotency-Key is kept and replayed (hours).", gt=0)
    hash_key: str = _var(DEVELOPMENT_IDEMPOTENCY_HASH_KEY, "DOLBOM_IDEMPOTENCY_HASH_KEY", "Key of the HMAC "
                         "of stored request bodies (a sign-up body holds a password); set it in production.",
                         secret=True, min_length=1)


class NotifySettings(_Group):
    """Notifications (SMS outbox)."""

    provider: Literal["file", "http"] = _var("file", "DOLBOM_NOTIFY_PROVIDER", "`file` (a JSON-lines sink) "
                                             "or `http` (an SMS gateway taking an Idempotency-Key).")
    file_path: Path | None = _var(None, "DOLBOM_NOTIFY_FILE", "The `file` provider's JSON-lines sink.",
                                  shown_default="$DOLBOM_DATA_DIR/sms-outbox.jsonl")
    file_ack_delay_s: float = _var(0.0, "DOLBOM_NOTIFY_FILE_ACK_DELAY_S", "Pause (seconds) between writing a "
                                   "message to the file sink and marking it sent (tests use it to kill a worker "
                                   "mid-send).", ge=0)
    sms_gateway_url: str | None = _var(None, "DOLBOM_SMS_GATEWAY_URL", "URL of the `http` provider's SMS "
                                       "gateway.")
    sms_gateway_key: str | None = _var(None, "DOLBOM_SMS_GATEWAY_KEY", "Key of the SMS gateway.", secret=True)
    sms_gateway_sender: str = _var("dolbom", "DOLBOM_SMS_GATEWAY_SENDER", "Sender name or number the SMS "
                                   "gateway shows.", min_length=1)
    timeout_s: float = _var(10.0, "DOLBOM_NOTIFY_TIMEOUT_S", "Timeout of one gateway request (seconds).", gt=0)
    max_attempts: int = _var(6, "DOLBOM_NOTIFY_MAX_ATTEMPTS", "Attempts before a message is given up.", ge=1)
    backoff_s: float = _var(15.0, "DOLBOM_NOTIFY_BACKOFF_S", "First retry delay (seconds), doubled after each "
                            "failure.", ge=0)
    lease_s: float = _var(60.0, "DOLBOM_NOTIFY_LEASE_S", "A claimed message another worker may take over once "
                          "this lease has passed (the claimer died).", gt=0)


class PrivacySettings(_Group):
    """Retention of personal data (`dolbom privacy purge`; docs/privacy.md says why)."""

    outbox_days: int = _var(30, "DOLBOM_RETAIN_OUTBOX_DAYS", "Sent or failed texts keep their phone number and "
                            "body this many days (outbox rows and the file sink's lines).", ge=1)
    bookings_days: int = _var(365, "DOLBOM_RETAIN_BOOKINGS_DAYS", "Finished bookings and emergency requests keep "
                              "the child's name, the phone number and the exact place this many days after they "
                              "end.", ge=1)
    audit_personal_days: int = _var(1095, "DOLBOM_RETAIN_AUDIT_PERSONAL_DAYS", "Audit rows keep personal fields "
                                    "(e-mail, names, phone, birth date) this many days; the rest of the row stays.",
                                    ge=1)
    login_failures_days: int = _var(30, "DOLBOM_RETAIN_LOGIN_FAILURES_DAYS", "Failed logins (e-mail and client "
                                    "address) are deleted after this many days.", ge=1)


class PgBouncerSettings(_Group):
    """PgBouncer (transaction pooling) between the workers and PostgreSQL.

    On with the local cluster: `dolbom db up --pgbouncer` / `dolbom run` start it and the app connects through
    it. On with DATABASE_URL: DATABASE_URL is a transaction pooler and DOLBOM_DIRECT_DATABASE_URL the server.
    """

    enabled: bool = _var(False, "DOLBOM_PGBOUNCER", "Connect through PgBouncer (transaction pooling).")
    port: int = _var(64329, "DOLBOM_PGBOUNCER_PORT", "Port of the local PgBouncer.", ge=1, le=65535)
    # Like the cluster it trusts its clients: on TCP every local user could connect as the superuser.
    listen_addr: str = _var("", "DOLBOM_PGBOUNCER_LISTEN_ADDR", "TCP address the local PgBouncer listens on "
                            "besides its unix socket; empty: the socket only. Set 127.0.0.1 only on a machine "
                            "of your own.")
    pool_size: int = _var(20, "DOLBOM_PGBOUNCER_POOL_SIZE", "Server connections per database, shared by all "
                          "client connections (PostgreSQL's max_connections is 100).", ge=1)
    max_client_conn: int = _var(2000, "DOLBOM_PGBOUNCER_MAX_CLIENT_CONN", "Client connections PgBouncer "
                                "accepts.", ge=1)


class ReplicaSettings(_Group):
    """Read replicas (streaming standbys)."""

    urls_csv: str = _var("", "DOLBOM_REPLICA_URLS", "Comma-separated replica URLs; unset: the local standbys "
                         "that exist.", secret=True)
    max_lag_s: float = _var(5.0, "DOLBOM_REPLICA_MAX_LAG_S", "A replica further behind the primary than this "
                            "(seconds) is not read from.", gt=0)
    read_your_writes_wait_ms: float = _var(200.0, "DOLBOM_READ_YOUR_WRITES_WAIT_MS", "How long a read carrying "
                                           "a write position waits for a replica to replay it before the primary "
                                           "serves it (milliseconds).", ge=0)

    @property
    def urls(self) -> list[str]:
        """``DOLBOM_REPLICA_URLS`` as a list (empty when unset)."""
        return [normalise_url(u.strip()) for u in self.urls_csv.split(",") if u.strip()]


class TransparencyLogSettings(_Group):
    """The waitlist's public transparency log (docs/transparency-log.md): its name and its signing keys."""

    origin: str = _var("dolbom.localhost/waitlist", "DOLBOM_LOG_ORIGIN", "The log's origin line, also the name "
                       "of its signing key (a schema-less URL naming this deployment).", pattern=r"^[^\s+]+$")
    key_file: Path | None = _var(None, "DOLBOM_LOG_KEY_FILE", "File holding the log's Ed25519 signing key "
                                 "(`PRIVATE+KEY+...`, made by `dolbom waitlist keygen`); unset: a development key "
                                 "in DOLBOM_DATA_DIR, made on first use (refused in production).", secret=True)
    extra_key_files: str = _var("", "DOLBOM_LOG_EXTRA_KEY_FILES", "Comma-separated files of more signing keys "
                                "that also sign every checkpoint (a key rotation: the new key signs next to the "
                                "old one until watchers trust it).")
    on_write: bool = _var(True, "DOLBOM_LOG_ON_WRITE", "Sign a receipt with each application and publish the log "
                          "after each write commits (off only to measure their cost: the feed and the daily job "
                          "still publish).")
    witness_keys: str = _var("", "DOLBOM_LOG_WITNESS_KEYS", "Comma-separated verifier keys "
                             "(`name+id+key`, cosignature/v1) of the witnesses whose cosignatures are accepted.")


def development_only(settings: Any) -> list[tuple[str, str]]:
    """``(variable, why)`` for each setting only a development machine may keep: the `local` identity provider
    and keys whose default value is published in this repository."""
    found: list[tuple[str, str]] = []
    if settings.identity.provider == "local":
        found.append(("DOLBOM_IDENTITY_PROVIDER=local", "the local identity provider lets anyone verify as anyone; "
                      "use oidc"))
    if settings.identity.ci_hash_key == DEVELOPMENT_CI_HASH_KEY:
        found.append(("DOLBOM_CI_HASH_KEY", "is the published development key; set a secret of your own"))
    if settings.idempotency.hash_key == DEVELOPMENT_IDEMPOTENCY_HASH_KEY:
        found.append(("DOLBOM_IDEMPOTENCY_HASH_KEY", "is the published development key; set a secret of your own"))
    if settings.server.clock_offset_days:
        found.append(("DOLBOM_CLOCK_OFFSET_DAYS", "moves the clock of dated public facts; it is for tests only"))
    if settings.log.key_file is None:
        found.append(("DOLBOM_LOG_KEY_FILE", "is unset: the waitlist log is signed with a development key made on "
                      "this machine; make one with `dolbom waitlist keygen` and name its file"))
    return found


def development_warnings(settings: Settings) -> list[str]:
    """What makes this a development setup, one sentence each (for ``/health`` and the pages' banner); empty
    outside development (where ``Settings`` refuses to start with any of it)."""
    if settings.server.environment != "development":
        return []
    return [f"{env} {why}" if env.endswith("_KEY") else f"{env}: {why}"
            for env, why in development_only(settings)]


class SettingsError(DolbomError, ValueError):
    """The environment (or ``.env``) holds a value the settings refuse; ``detail`` names the variable, on one
    line."""

    title = "Invalid settings"


class _FlatEnvSource(PydanticBaseSettingsSource):
    """The groups' variables by their flat names, from the environment over ``.env`` (names matched without
    regard to case, dict values decoded from JSON), for ``Settings`` to move into their groups."""

    def __init__(self, settings_cls: type[BaseSettings], env: EnvSettingsSource,
                 dotenv: DotEnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Not used: ``__call__`` reads every variable at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """``{variable name: value}`` of every group variable that is set."""
        found: dict[str, Any] = {}
        for source in (self._dotenv, self._env):  # the environment wins over .env
            values: Mapping[str, str | None] = source.env_vars
            for env, (group, name) in ENV_FIELDS.items():
                value = values.get(env if source.case_sensitive else env.lower())
                if value is None:
                    continue
                if _is_mapping(GROUPS[group].model_fields[name].annotation):
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise SettingsError(f"invalid setting {env}: not JSON") from None
                found[env] = value
        return found


def _is_mapping(annotation: Any) -> bool:
    """True for ``dict[...]`` annotations (read from the environment as JSON)."""
    return getattr(annotation, "__origin__", None) is dict


class Settings(BaseSettings):
    """Runtime configuration, grouped by concern; every field of a group is read from its own flat environment
    variable (see docs/settings.md).

    ``database.url`` unset means "use the project-local PostGIS cluster" that ``dolbom db up`` provisions
    under ``local.data_dir``.
    """

    model_config = SettingsConfigDict(env_file=dolbom_home() / ".env", env_prefix="", extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    local: LocalClusterSettings = Field(default_factory=LocalClusterSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    vacancy: VacancySettings = Field(default_factory=VacancySettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    booking: BookingSettings = Field(default_factory=BookingSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    pgbouncer: PgBouncerSettings = Field(default_factory=PgBouncerSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    log: TransparencyLogSettings = Field(default_factory=TransparencyLogSettings)

    def __init__(self, **values: Any) -> None:
        """Read the environment and ``.env`` under ``values`` (by variable name, e.g. ``DATABASE_URL=...``,
        or by group, e.g. ``search={"max_page_limit": 2}``); a refused value raises ``SettingsError``."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(describe_settings_error(exc)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments over the environment over ``.env``, all by flat variable name."""
        assert isinstance(env_settings, EnvSettingsSource) and isinstance(dotenv_settings, DotEnvSettingsSource)
        return init_settings, _FlatEnvSource(settings_cls, env_settings, dotenv_settings)

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_names(cls, data: Any) -> Any:
        """Move values given by flat variable name into their group; a value given in the group wins."""
        if not isinstance(data, Mapping):
            return data
        nested: dict[str, Any] = {key: value for key, value in data.items() if key not in ENV_FIELDS}
        for key, value in data.items():
            if key not in ENV_FIELDS:
                continue
            group, name = ENV_FIELDS[key]
            current = nested.get(group)
            merged = dict(current.model_dump() if isinstance(current, BaseModel) else current or {})
            if name not in merged and key not in merged:
                merged[name] = value
            nested[group] = merged
        return nested

    @model_validator(mode="after")
    def _pooler_needs_a_direct_url(self) -> Settings:
        """With an external pooler, LISTEN and migrations need the server's own URL: refuse to guess it."""
        if self.pgbouncer.enabled and self.database.url and not self.database.direct_url:
            raise ValueError("DOLBOM_PGBOUNCER=1 with DATABASE_URL needs DOLBOM_DIRECT_DATABASE_URL (the "
                             "PostgreSQL server itself, for LISTEN, migrations and imports)")
        return self

    @model_validator(mode="after")
    def _production_needs_real_identity(self) -> Settings:
        """Outside development, refuse what lets anyone verify as anyone or forge a stored identity."""
        if self.server.environment != "development":
            problems = [f"{env}: {why}" for env, why in development_only(self)]
            if problems:
                raise ValueError(f"DOLBOM_ENV={self.server.environment} refuses " + "; ".join(problems))
        return self

    def now(self) -> datetime:
        """The current instant (UTC) as dated public facts see it: the real clock, moved by
        ``DOLBOM_CLOCK_OFFSET_DAYS`` (a test-only setting)."""
        return datetime.now(UTC) + timedelta(days=self.server.clock_offset_days)

    def updated(self, **changes: Any) -> Settings:
        """A copy with the variables ``changes`` names (flat names, e.g. ``DOLBOM_MAX_PAGE_LIMIT=2``) changed,
        validated like the environment (``SettingsError`` when refused); the environment is not read again."""
        data: dict[str, dict[str, Any]] = {group: getattr(self, group).model_dump() for group in GROUPS}
        for env, value in changes.items():
            if env not in ENV_FIELDS:
                raise KeyError(f"no setting is read from {env}")
            group, name = ENV_FIELDS[env]
            data[group][name] = value
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise SettingsError(describe_settings_error(exc)) from None

    @property
    def pg_dir(self) -> Path:
        """Directory of the project-local PostgreSQL cluster."""
        return self.local.data_dir / "pg"

    def local_database_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of the project-local cluster (unix socket in ``pg_dir``)."""
        db = database or self.local.pg_database
        return f"postgresql+psycopg://postgres@/{db}?host={self.pg_dir}&port={self.local.pg_port}"

    @property
    def pgbouncer_dir(self) -> Path:
        """Directory of the local PgBouncer: its ini, userlist, pid file, log and unix socket."""
        return self.local.data_dir / "pgbouncer"

    def local_pgbouncer_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of the local PgBouncer (unix socket in ``pgbouncer_dir``) for ``database``."""
        db = database or self.local.pg_database
        return f"postgresql+psycopg://postgres@/{db}?host={self.pgbouncer_dir}&port={self.pgbouncer.port}"

    @property
    def effective_database_url(self) -> str:
        """Where the app's connections go: ``DATABASE_URL`` when set, else the local PgBouncer when
        ``DOLBOM_PGBOUNCER`` is on, else the project-local cluster."""
        if self.database.url:
            return normalise_url(self.database.url)
        if self.pgbouncer.enabled:
            return self.local_pgbouncer_url()
        return self.local_database_url()

    @property
    def direct_database_url(self) -> str:
        """PostgreSQL itself, never a transaction pooler: for what needs one server session (LISTEN, migrations
        and DDL, session advisory locks, long imports). ``DOLBOM_DIRECT_DATABASE_URL``, else ``DATABASE_URL``,
        else the project-local cluster."""
        if self.database.direct_url:
            return normalise_url(self.database.direct_url)
        if self.database.url:
            return normalise_url(self.database.url)
        return self.local_database_url()

    @property
    def through_pgbouncer(self) -> bool:
        """True when ``effective_database_url`` goes through a transaction pooler."""
        return self.pgbouncer.enabled and self.effective_database_url != self.direct_database_url

    def local_replica_dir(self, index: int) -> Path:
        """Data directory of local standby ``index`` (1-based), beside the primary's."""
        return self.local.data_dir / f"pg-replica-{index}"

    def local_replica_port(self, index: int) -> int:
        """Port (of the unix socket) of local standby ``index``: the primary's plus ``index``."""
        return self.local.pg_port + index

    def local_replica_url(self, index: int, database: str | None = None) -> str:
        """SQLAlchemy URL of local standby ``index`` (unix socket in its own directory)."""
        db = database or self.local.pg_database
        return (f"postgresql+psycopg://postgres@/{db}?host={self.local_replica_dir(index)}"
                f"&port={self.local_replica_port(index)}")

    def local_replica_indexes(self) -> list[int]:
        """Indexes of the local standbys initialised on disk (1, 2, ... without a gap)."""
        indexes: list[int] = []
        while (self.local_replica_dir(len(indexes) + 1) / "PG_VERSION").exists():
            indexes.append(len(indexes) + 1)
        return indexes

    @property
    def effective_replica_urls(self) -> list[str]:
        """``DOLBOM_REPLICA_URLS`` when set; else, on the local cluster (``DATABASE_URL`` unset), its standbys
        that exist; else none (every read goes to the primary)."""
        if self.replicas.urls_csv.strip():
            return self.replicas.urls
        if self.database.url:
            return []
        return [self.local_replica_url(i) for i in self.local_replica_indexes()]


GROUPS: dict[str, type[_Group]] = {
    name: field.annotation for name, field in Settings.model_fields.items()  # type: ignore[misc]
}
# Flat environment variable name -> (group, field); the one table the environment, keyword arguments,
# ``Settings.updated``, error messages and docs/settings.md go by.
ENV_FIELDS: dict[str, tuple[str, str]] = {
    str(field.validation_alias): (group, name)
    for group, model in GROUPS.items() for name, field in model.model_fields.items()
}


@dataclass(frozen=True)
class Variable:
    """One environment variable as docs/settings.md lists it."""

    env: str
    group: str
    field: str
    type: str
    default: str
    description: str
    secret: bool


def variables() -> Iterator[Variable]:
    """Every environment variable the settings read, in group order."""
    for env, (group, name) in ENV_FIELDS.items():
        field = GROUPS[group].model_fields[name]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if extra.get("shown_default"):
            shown = str(extra["shown_default"])
        elif default is None:
            shown = "unset"
        elif isinstance(default, (dict, bool)):
            shown = json.dumps(default, ensure_ascii=False)
        else:
            shown = str(default)
        yield Variable(env=env, group=group, field=name, type=_type_name(field.annotation), default=shown,
                       description=field.description or "", secret=bool(extra.get("secret")))


def _type_name(annotation: Any) -> str:
    """A short readable name of a field's type (``int``, ``str | None``, ``"file" | "http"``)."""
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    for noise in ("typing.", "pathlib.", "<class '", "'>"):
        text = text.replace(noise, "")
    if text.startswith("Literal["):
        text = " | ".join(f"`{v.strip()}`" for v in text[len("Literal["):-1].replace("'", "").split(","))
    return text.replace("Optional[", "").replace("NoneType", "None")


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming each refused variable and why (secrets' values are not repeated)."""
    parts: list[str] = []
    named = True
    for err in exc.errors():
        loc = err["loc"]
        msg = err["msg"].removeprefix("Value error, ")
        env = _env_of(loc)
        if env is None:
            parts.append(msg if not loc else ".".join(map(str, loc)) + ": " + msg)
            named = named and bool(loc)
            continue
        group, name = ENV_FIELDS[env]
        extra = GROUPS[group].model_fields[name].json_schema_extra
        secret = isinstance(extra, dict) and extra.get("secret")
        where = env + "".join(f"[{part}]" for part in loc[2:])
        shown = "" if secret or err["type"] == "missing" or len(loc) > 2 else f"={err['input']!r}"
        parts.append(f"{where}{shown}: {msg}")
    return ("invalid setting " if named else "invalid settings: ") + "; ".join(parts)


def _env_of(loc: tuple[int | str, ...]) -> str | None:
    """The variable an error location ``(group, field or variable, ...)`` points at."""
    if len(loc) < 2 or loc[0] not in GROUPS:
        return None
    if loc[1] in ENV_FIELDS:
        return str(loc[1])
    return next((env for env, where in ENV_FIELDS.items() if where == (loc[0], loc[1])), None)


def normalise_url(url: str) -> str:
    """Make a libpq-style ``postgresql://`` URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process's settings from the environment, built on first use. Only entry points (the CLI, the app
    factory, scripts) call this; library functions take ``settings`` as an argument. A refused value raises
    ``SettingsError`` (one line naming the variable)."""
    return Settings()


def get_settings_or_exit() -> Settings:
    """``get_settings`` for a process that starts without the CLI (an app server's factory): a refused value
    ends the process with one line on stderr and status 2, not a traceback."""
    try:
        return get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
