"""``dolbom seed``: the default data, a synthetic national 기본정보 file, synthetic applications."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError

app = typer.Typer(help="Synthetic data: the default facility set, a national 기본정보 file, applications.",
                  invoke_without_command=True)


@app.callback()
def seed(ctx: typer.Context, seed: int = 20090101, force: bool = False) -> None:
    """Load the default data: real boundaries/population and the deterministic synthetic facility set."""
    if ctx.invoked_subcommand is not None:
        return
    from geo.ingest.defaults import load_default_data

    engine = migrated_engine(direct=True)
    try:
        console.print(load_default_data(engine, seed=seed, force=force, progress=True).summary())
    except DolbomError as exc:
        fail(exc)


@app.command("national")
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
    engine = migrated_engine()
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
        fail(exc)
    console.print(result.summary())


@app.command("applications")
def seed_applications_cmd(
    count: Annotated[int, typer.Option(min=1, help="Number of waiting entries")] = 1_000_000,
    year: Annotated[int | None, typer.Option(help="보육연도 applied for (default: the current one)")] = None,
    seed: Annotated[int, typer.Option()] = 20260301,
) -> None:
    """Bulk-load synthetic waitlist applications (parents, children, claims, entries) at the operating centres."""
    from datetime import date

    from geo.admission.rules import childcare_year
    from geo.admission.seeding import seed_applications

    engine = migrated_engine()
    try:
        result = seed_applications(engine, count=count, year=year or childcare_year(date.today()), seed=seed)
    except DolbomError as exc:
        fail(exc)
    console.print(result.summary())
