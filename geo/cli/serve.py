"""``dolbom run`` and ``dolbom serve``: the API under uvicorn (one process or several workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


WorkersOption = Annotated[int | None, typer.Option(
    min=1, max=64, help="API worker processes on the one port (default DOLBOM_WORKERS, 1)")]


def check_connection_budget(engine: Engine, settings: Settings, workers: int) -> None:
    """Warn when ``workers`` full sets of pools could exceed the server's ``max_connections``."""
    from sqlalchemy import text

    from geo.db import api_connections_per_worker

    with engine.connect() as conn:
        allowed = int(conn.execute(text("SHOW max_connections")).scalar_one())
    wanted = workers * api_connections_per_worker(settings)
    if wanted > allowed:
        console.print(f"[yellow]warning:[/yellow] {workers} workers may open up to {wanted} connections "
                      f"(per worker {api_connections_per_worker(settings)}); the server allows {allowed}",
                      soft_wrap=True)


def serve_api(settings: Settings, *, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with uvicorn: one process, or ``workers`` processes sharing one listening socket."""
    import uvicorn

    host = host or settings.server.host
    port = port or settings.server.port
    workers = workers or settings.server.workers
    plural = "s" if workers > 1 else ""
    console.print(f"[green]serving[/green] http://{host}:{port}/ ({workers} worker{plural})")
    # By import string, so that geo/ never imports the web layer; it is also what lets uvicorn start several
    # worker processes, each building its own app (pools, tile cache, vacancy LISTEN) with create_app().
    proxy_headers, forwarded_allow_ips = proxy_options(settings)
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)


def proxy_options(settings: Settings) -> tuple[bool, str]:
    """uvicorn's ``(proxy_headers, forwarded_allow_ips)``: believe ``X-Forwarded-For`` / ``-Proto`` only from
    the proxies DOLBOM_FORWARDED_ALLOW_IPS names.

    uvicorn's own default believes them from 127.0.0.1, so that any client could name its own address to the
    login throttle through a same-host proxy; here nobody is believed unless the setting names the proxy.
    """
    allowed = ",".join(ip.strip() for ip in settings.server.forwarded_allow_ips.split(",") if ip.strip())
    if not allowed:
        return False, ""
    return True, allowed


def run(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: WorkersOption = None,
) -> None:
    """Provision PostGIS, migrate, load the default data if empty (Seoul boundaries and the bundled OA-20300
    snapshot), and serve the map."""
    from geo.ingest.bundled import load_default_seoul

    settings = get_settings()
    engine = migrated_engine(direct=True)
    try:
        console.print(load_default_seoul(engine).summary())
    except DolbomError as exc:
        fail(exc)
    check_connection_budget(engine, settings, workers or settings.server.workers)
    engine.dispose()
    serve_api(settings, host=host, port=port, workers=workers)


def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: WorkersOption = None,
) -> None:
    """Serve the API only: no provisioning, migration or data loading (a deployment where ``dolbom db migrate``
    and the imports run separately). Refuses a database whose schema is not the one this code migrates to; a
    database that is down is served anyway (503 answers until it is back)."""
    from sqlalchemy.exc import OperationalError

    from geo.db import make_engine
    from geo.ops.migrate import schema_revisions

    settings = get_settings()
    engine = make_engine(settings=settings, connect_args={"connect_timeout": max(1, int(settings.database.timeout_s))})
    try:
        current, heads = schema_revisions(engine)
        if current != heads:
            at = ", ".join(sorted(current)) or "no schema"
            fail(DolbomError(f"the database is at {at}, this code needs {', '.join(sorted(heads))}: "
                             "run `dolbom db migrate` first"))
        check_connection_budget(engine, settings, workers or settings.server.workers)
    except OperationalError:
        console.print("[yellow]warning:[/yellow] the database does not answer yet; serving anyway (503 until it does)")
    finally:
        engine.dispose()
    serve_api(settings, host=host, port=port, workers=workers)
