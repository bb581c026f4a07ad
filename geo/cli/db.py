"""``dolbom db``: the project-local PostGIS cluster (standbys, PgBouncer, backups) and its schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape

from geo.cli.common import PgBouncerOption, ReplicasOption, console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="Project-local PostGIS cluster and schema.", no_args_is_help=True)


@app.command("up")
def db_up(pgbouncer: PgBouncerOption = False, replicas: ReplicasOption = None) -> None:
    """Install PostGIS if needed, initialise and start the local cluster (and its standbys, and PgBouncer when
    asked), apply migrations."""
    from geo.db import check_database

    settings = get_settings()
    try:
        engine = migrated_engine(direct=True, pgbouncer=pgbouncer, replicas=replicas)
    except DolbomError as exc:
        fail(exc)
    console.print(f"[green]up[/green] {engine.url.render_as_string(hide_password=True)} {check_database(engine)}")
    for index in settings.local_replica_indexes() if not settings.database.url else []:
        console.print(f"replica {index}: {settings.local_replica_url(index)}")
    if pgbouncer or settings.pgbouncer.enabled:
        console.print(f"[green]pgbouncer[/green] {settings.local_pgbouncer_url()} (transaction pooling"
                      + ("" if settings.pgbouncer.enabled else "; set DOLBOM_PGBOUNCER=1 for the app to use it") + ")")


@app.command("down")
def db_down() -> None:
    """Stop the local cluster, its standbys and its PgBouncer."""
    from geo.ops import provision

    settings = get_settings()
    if provision.pgbouncer_down(settings):
        console.print("pgbouncer stopped")
    stopped = provision.down(settings)
    console.print("stopped" if stopped else "was not running")


@app.command("status")
def db_status() -> None:
    """Show whether the local cluster is initialised and running, and its standbys with their replay lag."""
    from sqlalchemy.engine import make_url

    from geo.ops import provision

    settings = get_settings()
    if settings.database.url:
        url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        console.print(f"DATABASE_URL is set; the local cluster is not used ({escape(url)})")
        return
    st = provision.status(settings)
    console.print(f"cluster {st.pg_dir}: initialised={st.initialised} running={st.running}\nurl {st.url}")
    bouncer = provision.pgbouncer_status(settings)
    if bouncer.configured or settings.pgbouncer.enabled:
        console.print(f"pgbouncer {bouncer.dir}: running={bouncer.running} pid={bouncer.pid or '-'} "
                      f"used={settings.pgbouncer.enabled}\nurl {bouncer.url}")
    for replica in st.replicas:
        lag = "unknown" if replica.replay_lag_bytes is None else f"{replica.replay_lag_bytes} bytes"
        console.print(f"replica {replica.index} {replica.pg_dir}: running={replica.running} replay_lag={lag}\n"
                      f"url {replica.url}")
    _print_backup_status(settings)


def _print_backup_status(settings) -> None:  # type: ignore[no-untyped-def]
    """The archiving switch and the newest backup (``dolbom db status``)."""
    from geo.ops import backup

    if not settings.local.archive:
        console.print("backups: WAL archiving off (DOLBOM_PG_ARCHIVE=0)")
        return
    try:
        found = backup.backups(settings)
    except DolbomError as exc:
        console.print(f"backups {backup.backup_dir(settings)}: unknown ({escape(exc.detail)})")
        return
    newest = f", newest {found[-1].label} ({found[-1].kind}) stopped {found[-1].stopped_at.isoformat()}" \
        if found else " (`dolbom db backup`)"
    console.print(f"backups {backup.backup_dir(settings)}: {len(found)}{newest}")


@app.command("migrate")
def db_migrate() -> None:
    """Apply Alembic migrations to the configured database."""
    migrated_engine()
    console.print("[green]schema at head[/green]")


BackupTypeOption = Annotated[str, typer.Option(
    "--type", help="full, diff (changes since the last full) or incr (changes since the last backup)")]
RestoreToOption = Annotated[str, typer.Option(
    "--to", help="Moment to recover to, ISO 8601 (2026-12-06T11:50:00+09:00; without a zone: this machine's)")]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the cluster")]


@app.command("backup")
def db_backup(kind: BackupTypeOption = "full") -> None:
    """Back up the local cluster into its pgBackRest repository (DOLBOM_DATA_DIR/backups) and expire what
    DOLBOM_BACKUP_RETENTION_FULL no longer keeps."""
    from geo.ops import backup

    settings = get_settings()
    try:
        if kind not in backup.BACKUP_KINDS:
            raise backup.BackupError(f"--type {kind!r}: use one of {', '.join(backup.BACKUP_KINDS)}")
        made = backup.backup(settings, kind=kind)  # type: ignore[arg-type]
    except DolbomError as exc:
        fail(exc)
    console.print(f"[green]backup[/green] {made.label} ({made.kind}) {made.started_at:%Y-%m-%d %H:%M:%S}Z to "
                  f"{made.stopped_at:%H:%M:%S}Z: cluster {_mib(made.database_bytes)}, stored "
                  f"{_mib(made.stored_bytes)} in {backup.backup_dir(settings)}")


@app.command("backups")
def db_backups() -> None:
    """List the backups of the local cluster, oldest first."""
    from geo.ops import backup

    try:
        found = backup.backups(get_settings())
    except DolbomError as exc:
        fail(exc)
    if not found:
        console.print("no backups yet (`dolbom db backup`)")
    for b in found:
        # stdout: one line per backup, for scripts (the label first).
        typer.echo(f"{b.label}\t{b.kind}\t{b.started_at.isoformat()}\t{b.stopped_at.isoformat()}\t"
                   f"{b.database_bytes}\t{b.stored_bytes}")


def _parse_moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DolbomError(f"--to {value!r} is not an ISO 8601 time (e.g. 2026-12-06T11:50:00+09:00)") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


@app.command("restore")
def db_restore(to: RestoreToOption, yes: YesOption = False) -> None:
    """Point-in-time recovery of the local cluster: everything committed up to --to is back, everything after
    it gone. The replaced cluster is kept beside it (pg.before-restore-<time>); standbys are copied again."""
    from geo.ops import backup

    settings = get_settings()
    try:
        moment = _parse_moment(to)
        backup.require_local(settings, "restore")
    except DolbomError as exc:
        fail(exc)
    if not yes:
        typer.confirm(f"Replace the local cluster in {settings.pg_dir} with its state at {moment.isoformat()}?",
                      abort=True)
    try:
        result = backup.restore(settings, to=moment)
    except DolbomError as exc:
        fail(exc)
    if result.warning:
        console.print(f"[yellow]warning:[/yellow] {escape(result.warning)}")
    console.print(f"[green]restored[/green] to {result.target.isoformat()} in {result.seconds:.1f} s; the cluster "
                  f"before the restore is in {result.set_aside} (remove it when no longer needed)")
    if result.standbys:
        console.print(f"standbys copied again: {', '.join(map(str, result.standbys))}")


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"
