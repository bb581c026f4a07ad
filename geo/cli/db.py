"""``dolbom db``: the project-local PostGIS cluster (standbys, PgBouncer) and its schema."""

from __future__ import annotations

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


@app.command("migrate")
def db_migrate() -> None:
    """Apply Alembic migrations to the configured database."""
    migrated_engine()
    console.print("[green]schema at head[/green]")
