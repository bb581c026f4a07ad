"""``dolbom sync``: the daily sync from the official open APIs."""

from __future__ import annotations

import typer

from geo.cli.common import fail, migrated_engine, print_report
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="Daily sync from the official open APIs (keys from settings).", no_args_is_help=True)


def _run_sync(sync) -> None:  # type: ignore[no-untyped-def]
    """Run one ``geo.ingest.sync`` function on the configured database and print its report, or fail in one line."""
    engine = migrated_engine(direct=True)
    try:
        result = sync(engine, get_settings())
    except DolbomError as exc:
        fail(exc)
    print_report(result)


@app.command("seoul")
def sync_seoul_cmd() -> None:
    """Fetch OA-20300 from the Seoul open data API (DOLBOM_SEOUL_API_KEY) and import it; all or nothing."""
    from geo.ingest.sync import sync_seoul

    _run_sync(sync_seoul)


@app.command("national")
def sync_national_cmd() -> None:
    """Fetch 어린이집 기본정보 from the national open API (DOLBOM_NATIONAL_API_KEY) and import it."""
    from geo.ingest.sync import sync_national

    _run_sync(sync_national)
