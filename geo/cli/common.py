"""What every ``dolbom`` command shares: the stderr console, one-line errors, and the provisioned, migrated
database engine."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geo.errors import DolbomError
from geo.settings import get_settings

console = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    line = " ".join(str(message).split()) or "unknown error"
    console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)


def fail(exc: DolbomError) -> None:
    error_line(exc.detail)
    raise typer.Exit(code=1)


def describe(exc: BaseException) -> str:
    """A one-line description of an unexpected error (settings, database, file system, anything else)."""
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, ValidationError):  # e.g. Settings from a bad environment: say which and why
        return f"invalid {exc.title}: " + "; ".join(
            ".".join(map(str, e["loc"])) + (": " if e["loc"] else "") + e["msg"] for e in exc.errors())

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first = str(exc.orig).strip().splitlines()
        return f"database error: {first[0] if first else type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    text = str(exc).strip().splitlines()
    return f"unexpected {type(exc).__name__}" + (f": {text[0]}" if text else "")


def provision_local(*, pgbouncer: bool = False, replicas: int | None = None) -> None:
    """Provision the local cluster when ``DATABASE_URL`` is unset (and ``replicas`` standbys, default
    ``DOLBOM_PG_REPLICAS``; standbys already on disk are started too), and its PgBouncer when
    ``DOLBOM_PGBOUNCER`` is on or ``pgbouncer`` is asked for."""
    from geo.ops import provision

    settings = get_settings()
    if settings.database.url:
        if pgbouncer:
            raise DolbomError("--pgbouncer starts PgBouncer for the project-local cluster only; with DATABASE_URL "
                              "set, run your own PgBouncer and set DOLBOM_PGBOUNCER=1 and DOLBOM_DIRECT_DATABASE_URL")
        if replicas:
            raise DolbomError("--replicas provisions local standbys; DATABASE_URL is set (give DOLBOM_REPLICA_URLS)")
        return
    provision.up(settings, replicas=replicas)
    if pgbouncer or settings.pgbouncer.enabled:
        provision.pgbouncer_up(settings)


def migrated_engine(*, direct: bool = False, pgbouncer: bool = False,  # type: ignore[no-untyped-def]
                    replicas: int | None = None):
    """The configured database, provisioned and migrated. Migrations always run on PostgreSQL itself (DDL, one
    long transaction); ``direct`` returns that engine too (imports: one transaction for minutes would hold one of
    PgBouncer's few server connections), else the engine of ``effective_database_url`` (through PgBouncer when
    it is on). ``pgbouncer``: start the local PgBouncer even when ``DOLBOM_PGBOUNCER`` is off; ``replicas``: the
    local standbys to provide (default ``DOLBOM_PG_REPLICAS``)."""
    from geo.db import make_direct_engine, make_engine
    from geo.ops.migrate import upgrade

    settings = get_settings()
    provision_local(pgbouncer=pgbouncer, replicas=replicas)
    direct_engine = make_direct_engine(settings)
    upgrade(direct_engine)
    if direct or not settings.through_pgbouncer:
        return direct_engine
    direct_engine.dispose()
    return make_engine(settings=settings)


PgBouncerOption = Annotated[bool, typer.Option(
    "--pgbouncer", help="Also start PgBouncer (transaction pooling) in front of the local cluster")]
ReplicasOption = Annotated[int | None, typer.Option(
    min=0, max=9, help="Local read replicas (streaming standbys) to start beside the primary "
                       "(default: DOLBOM_PG_REPLICAS)")]


def print_report(result) -> None:  # type: ignore[no-untyped-def]
    """Print an import result (counts + the row-level report)."""
    table = Table(title=f"{result.kind}: {result.source_name}")
    for col in ("rows", "inserted", "updated", "unchanged", "skipped", "flagged", "changes", "unlisted"):
        table.add_column(col, justify="right")
    table.add_row(*(str(v) for v in (result.rows_read, result.inserted, result.updated, result.unchanged,
                                     result.skipped, result.flagged, result.enrollment_changes, result.unlisted)))
    console.print(table)
    for issue in result.report:
        where = f"row {issue['row']}" + (f", column {issue['column']}" if issue.get("column") else "")
        console.print(escape(f"  {issue['action']:8} {where} [{issue.get('code') or '-'}] {issue['reason']}"))
    for kind, count in result.omitted().items():
        console.print(escape(f"  ... and {count} more {kind} issues (first {result.report_limit} listed)"))
