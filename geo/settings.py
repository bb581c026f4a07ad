"""Settings read from the environment (and `.env`) by pydantic-settings; nothing connects at import."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def dolbom_home() -> Path:
    """Where ``.env`` and the data folder live: ``DOLBOM_HOME``; else the source checkout this package runs
    from (a directory with pyproject.toml, whatever the working directory); else ``$XDG_DATA_HOME/dolbom``
    (an installed package)."""
    if os.environ.get("DOLBOM_HOME"):
        return Path(os.environ["DOLBOM_HOME"]).expanduser().resolve()
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dolbom"


class Settings(BaseSettings):
    """Runtime configuration.

    ``database_url`` unset means "use the project-local PostGIS cluster" that ``dolbom db up`` provisions
    under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_file=dolbom_home() / ".env", env_prefix="", extra="ignore")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    data_dir: Path = Field(default=dolbom_home() / ".dolbom", alias="DOLBOM_DATA_DIR")
    local_pg_port: int = Field(default=54329, alias="DOLBOM_PG_PORT")
    local_pg_database: str = Field(default="dolbom", alias="DOLBOM_PG_DATABASE")
    host: str = Field(default="127.0.0.1", alias="DOLBOM_HOST")
    port: int = Field(default=8000, alias="DOLBOM_PORT")
    # API worker processes behind the one port (uvicorn's multi-process mode); each has its own pools.
    workers: int = Field(default=1, ge=1, le=64, alias="DOLBOM_WORKERS")
    # Name the answering worker process in an ``X-Dolbom-Worker: <pid>`` response header (load-balancing checks).
    worker_header: bool = Field(default=False, alias="DOLBOM_WORKER_HEADER")
    # Catchment radius (metres) by facility type, for "which centres' catchment contains my home".
    # 가정 (home) centres serve their block; 국공립 draw from the whole neighbourhood.
    catchment_radius_m: dict[str, float] = Field(
        default={
            "national_public": 1500.0,
            "private": 1000.0,
            "home": 500.0,
            "workplace": 3000.0,
            "corporate_group": 1000.0,
            "social_welfare": 1500.0,
            "cooperative": 1000.0,
        },
        alias="DOLBOM_CATCHMENT_RADIUS_M",
    )
    # Infant age groups (0-2세) get a shorter radius: parents walk with a pram.
    catchment_infant_factor: float = Field(default=0.7, alias="DOLBOM_CATCHMENT_INFANT_FACTOR")
    max_page_limit: int = Field(default=500, alias="DOLBOM_MAX_PAGE_LIMIT")
    max_radius_m: float = Field(default=50_000.0, alias="DOLBOM_MAX_RADIUS_M")
    external_geocoder_url: str | None = Field(default=None, alias="DOLBOM_GEOCODER_URL")
    # Seconds to wait for a database connection before answering 503 (also the connect timeout).
    db_timeout_s: float = Field(default=5.0, alias="DOLBOM_DB_TIMEOUT_S")
    # Connections of the API's async read pool (per worker process).
    read_pool_size: int = Field(default=10, alias="DOLBOM_READ_POOL_SIZE")
    # Imports stop (nothing written) once more than this share of the rows read was unusable, counted after
    # import_min_rows_for_ratio rows; reports keep the first import_report_per_kind issues of each kind.
    import_max_skip_ratio: float = Field(default=0.5, ge=0.0, le=1.0, alias="DOLBOM_IMPORT_MAX_SKIP_RATIO")
    import_min_rows_for_ratio: int = Field(default=200, ge=1, alias="DOLBOM_IMPORT_MIN_ROWS_FOR_RATIO")
    import_report_per_kind: int = Field(default=1000, ge=1, alias="DOLBOM_IMPORT_REPORT_PER_KIND")
    # Accounts: web sessions, API tokens, login throttling, 본인인증 (identity verification).
    session_ttl_hours: float = Field(default=12.0, alias="DOLBOM_SESSION_TTL_HOURS")
    token_ttl_days: float = Field(default=90.0, alias="DOLBOM_TOKEN_TTL_DAYS")
    login_max_failures: int = Field(default=5, alias="DOLBOM_LOGIN_MAX_FAILURES")
    login_ip_max_failures: int = Field(default=50, alias="DOLBOM_LOGIN_IP_MAX_FAILURES")
    login_lockout_minutes: float = Field(default=15.0, alias="DOLBOM_LOGIN_LOCKOUT_MINUTES")
    cookie_secure: bool = Field(default=False, alias="DOLBOM_COOKIE_SECURE")
    # Key of the HMAC that turns a provider's CI into the stored ci_hash; set it in production.
    ci_hash_key: str = Field(default="dolbom-development-ci-key", alias="DOLBOM_CI_HASH_KEY")
    identity_provider: str = Field(default="local", alias="DOLBOM_IDENTITY_PROVIDER")
    oidc_issuer: str | None = Field(default=None, alias="DOLBOM_OIDC_ISSUER")
    oidc_client_id: str | None = Field(default=None, alias="DOLBOM_OIDC_CLIENT_ID")
    oidc_client_secret: str | None = Field(default=None, alias="DOLBOM_OIDC_CLIENT_SECRET")
    oidc_redirect_uri: str | None = Field(default=None, alias="DOLBOM_OIDC_REDIRECT_URI")
    # Live vacancy: a centre that has not reported for this many days is flagged stale.
    vacancy_stale_days: float = Field(default=7.0, alias="DOLBOM_VACANCY_STALE_DAYS")
    # An SSE stream ends after this many seconds; the client reconnects with Last-Event-ID and misses nothing.
    vacancy_stream_max_s: float = Field(default=3600.0, gt=0, alias="DOLBOM_VACANCY_STREAM_MAX_S")
    # Daily sync from the official APIs.
    seoul_api_key: str | None = Field(default=None, alias="DOLBOM_SEOUL_API_KEY")
    seoul_api_url: str = Field(default="http://openapi.seoul.go.kr:8088", alias="DOLBOM_SEOUL_API_URL")
    national_api_key: str | None = Field(default=None, alias="DOLBOM_NATIONAL_API_KEY")
    national_api_url: str = Field(default="https://apis.data.go.kr/childcare/basicinfo",
                                  alias="DOLBOM_NATIONAL_API_URL")
    sync_page_size: int = Field(default=1000, alias="DOLBOM_SYNC_PAGE_SIZE")
    sync_timeout_s: float = Field(default=30.0, alias="DOLBOM_SYNC_TIMEOUT_S")
    sync_retries: int = Field(default=2, alias="DOLBOM_SYNC_RETRIES")
    # Booking (holiday/night/24-hour/hourly care): parents may cancel until this many hours before the start.
    booking_cancel_cutoff_hours: float = Field(default=2.0, ge=0, alias="DOLBOM_BOOKING_CANCEL_CUTOFF_HOURS")
    emergency_radius_m: float = Field(default=3_000.0, alias="DOLBOM_EMERGENCY_RADIUS_M")
    # Idempotency-Key: how long the first response of a keyed creating request is kept and replayed.
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, alias="DOLBOM_IDEMPOTENCY_TTL_HOURS")
    # Key of the HMAC of stored request bodies (a sign-up body holds a password); set it in production.
    idempotency_hash_key: str = Field(default="dolbom-development-idempotency-key",
                                      alias="DOLBOM_IDEMPOTENCY_HASH_KEY")
    # Notifications: "file" (a JSON-lines sink, default) or "http" (an SMS gateway taking an Idempotency-Key).
    notify_provider: str = Field(default="file", alias="DOLBOM_NOTIFY_PROVIDER")
    notify_file_path: Path | None = Field(default=None, alias="DOLBOM_NOTIFY_FILE")
    notify_file_ack_delay_s: float = Field(default=0.0, ge=0, alias="DOLBOM_NOTIFY_FILE_ACK_DELAY_S")
    sms_gateway_url: str | None = Field(default=None, alias="DOLBOM_SMS_GATEWAY_URL")
    sms_gateway_key: str | None = Field(default=None, alias="DOLBOM_SMS_GATEWAY_KEY")
    sms_gateway_sender: str = Field(default="dolbom", alias="DOLBOM_SMS_GATEWAY_SENDER")
    notify_timeout_s: float = Field(default=10.0, alias="DOLBOM_NOTIFY_TIMEOUT_S")
    notify_max_attempts: int = Field(default=6, ge=1, alias="DOLBOM_NOTIFY_MAX_ATTEMPTS")
    notify_backoff_s: float = Field(default=15.0, ge=0, alias="DOLBOM_NOTIFY_BACKOFF_S")
    # A claimed message another worker may take over once this lease has passed (the claimer died).
    notify_lease_s: float = Field(default=60.0, gt=0, alias="DOLBOM_NOTIFY_LEASE_S")
    # PgBouncer (transaction pooling) between the workers and PostgreSQL. On with the local cluster: `dolbom db up
    # --pgbouncer` / `dolbom run` start it and the app connects through it. On with DATABASE_URL: DATABASE_URL is
    # a transaction pooler and DOLBOM_DIRECT_DATABASE_URL the server itself (LISTEN, migrations, imports).
    pgbouncer: bool = Field(default=False, alias="DOLBOM_PGBOUNCER")
    pgbouncer_port: int = Field(default=64329, alias="DOLBOM_PGBOUNCER_PORT")
    # TCP address PgBouncer listens on besides its unix socket (default "": the socket only, in a directory only the
    # cluster owner reaches). Like the cluster it trusts its clients: on TCP every local user could connect as the
    # superuser, so set 127.0.0.1 only on a machine of your own.
    pgbouncer_listen_addr: str = Field(default="", alias="DOLBOM_PGBOUNCER_LISTEN_ADDR")
    # Server connections per database (PostgreSQL's max_connections is 100), shared by all client connections.
    pgbouncer_pool_size: int = Field(default=20, ge=1, alias="DOLBOM_PGBOUNCER_POOL_SIZE")
    pgbouncer_max_client_conn: int = Field(default=2000, ge=1, alias="DOLBOM_PGBOUNCER_MAX_CLIENT_CONN")
    direct_database_url_setting: str | None = Field(default=None, alias="DOLBOM_DIRECT_DATABASE_URL")

    # Read replicas (streaming standbys): comma-separated URLs; unset = the local standbys that exist.
    replica_urls_csv: str = Field(default="", alias="DOLBOM_REPLICA_URLS")
    # How many local standbys `dolbom db up` / `dolbom run` provide beside the local primary.
    local_pg_replicas: int = Field(default=0, ge=0, le=9, alias="DOLBOM_PG_REPLICAS")
    # A replica further behind the primary than this is not read from.
    replica_max_lag_s: float = Field(default=5.0, gt=0, alias="DOLBOM_REPLICA_MAX_LAG_S")
    # How long a read carrying a write position (read-your-writes) waits for a replica to replay it before it
    # is served by the primary.
    read_your_writes_wait_ms: float = Field(default=200.0, ge=0, alias="DOLBOM_READ_YOUR_WRITES_WAIT_MS")

    @model_validator(mode="after")
    def _pooler_needs_a_direct_url(self) -> Settings:
        """With an external pooler, LISTEN and migrations need the server's own URL: refuse to guess it."""
        if self.pgbouncer and self.database_url and not self.direct_database_url_setting:
            raise ValueError("DOLBOM_PGBOUNCER=1 with DATABASE_URL needs DOLBOM_DIRECT_DATABASE_URL (the "
                             "PostgreSQL server itself, for LISTEN, migrations and imports)")
        return self

    @property
    def pg_dir(self) -> Path:
        """Directory of the project-local PostgreSQL cluster."""
        return self.data_dir / "pg"

    def local_database_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of the project-local cluster (unix socket in ``pg_dir``)."""
        db = database or self.local_pg_database
        return f"postgresql+psycopg://postgres@/{db}?host={self.pg_dir}&port={self.local_pg_port}"

    @property
    def pgbouncer_dir(self) -> Path:
        """Directory of the local PgBouncer: its ini, userlist, pid file, log and unix socket."""
        return self.data_dir / "pgbouncer"

    def local_pgbouncer_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of the local PgBouncer (unix socket in ``pgbouncer_dir``) for ``database``."""
        db = database or self.local_pg_database
        return f"postgresql+psycopg://postgres@/{db}?host={self.pgbouncer_dir}&port={self.pgbouncer_port}"

    @property
    def effective_database_url(self) -> str:
        """Where the app's connections go: ``DATABASE_URL`` when set, else the local PgBouncer when
        ``pgbouncer`` is on, else the project-local cluster."""
        if self.database_url:
            return normalise_url(self.database_url)
        if self.pgbouncer:
            return self.local_pgbouncer_url()
        return self.local_database_url()

    @property
    def direct_database_url(self) -> str:
        """PostgreSQL itself, never a transaction pooler: for what needs one server session (LISTEN, migrations
        and DDL, session advisory locks, long imports). ``DOLBOM_DIRECT_DATABASE_URL``, else ``DATABASE_URL``,
        else the project-local cluster."""
        if self.direct_database_url_setting:
            return normalise_url(self.direct_database_url_setting)
        if self.database_url:
            return normalise_url(self.database_url)
        return self.local_database_url()

    @property
    def through_pgbouncer(self) -> bool:
        """True when ``effective_database_url`` goes through a transaction pooler."""
        return self.pgbouncer and self.effective_database_url != self.direct_database_url

    @property
    def replica_urls(self) -> list[str]:
        """``DOLBOM_REPLICA_URLS`` as a list (empty when unset)."""
        return [normalise_url(u.strip()) for u in self.replica_urls_csv.split(",") if u.strip()]

    def local_replica_dir(self, index: int) -> Path:
        """Data directory of local standby ``index`` (1-based), beside the primary's."""
        return self.data_dir / f"pg-replica-{index}"

    def local_replica_port(self, index: int) -> int:
        """Port (of the unix socket) of local standby ``index``: the primary's plus ``index``."""
        return self.local_pg_port + index

    def local_replica_url(self, index: int, database: str | None = None) -> str:
        """SQLAlchemy URL of local standby ``index`` (unix socket in its own directory)."""
        db = database or self.local_pg_database
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
        if self.replica_urls_csv.strip():
            return self.replica_urls
        if self.database_url:
            return []
        return [self.local_replica_url(i) for i in self.local_replica_indexes()]


def normalise_url(url: str) -> str:
    """Make a libpq-style ``postgresql://`` URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process's settings from the environment, built on first use. Only entry points (the CLI, the app
    factory, scripts) call this; library functions take ``settings`` as an argument."""
    return Settings()
