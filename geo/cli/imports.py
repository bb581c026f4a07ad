"""``dolbom import``: the official data files (Seoul OA-20300, the national 기본정보 export, MOIS population)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine, print_report
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="Import official data files (streaming, idempotent).", no_args_is_help=True)


def run_import(importer, path: Path, **options: object) -> None:  # type: ignore[no-untyped-def]
    """Run one importer on the configured database and print its row-level report.

    Centres are placed and assigned to 구/동 against the loaded boundaries: with none loaded yet, Seoul's are
    loaded first (other regions: ``dolbom boundaries load --sido-code``)."""
    from sqlalchemy import text

    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.run import ImportLimits

    engine = migrated_engine(direct=True)
    with engine.connect() as conn:
        has_boundaries = conn.execute(text("SELECT EXISTS (SELECT 1 FROM districts)")).scalar_one()
    if not has_boundaries:
        console.print("no boundaries loaded yet: " + load_boundaries(engine, sido_code="11").summary())
    try:
        result = importer(engine, path, progress=True, limits=ImportLimits.from_settings(get_settings()),
                          **options)
    except DolbomError as exc:
        fail(exc)
    print_report(result)


class SnapshotMode(StrEnum):
    """How a childcare file is read (see ``geo.ingest.childcare``)."""

    auto = "auto"
    full = "full"
    partial = "partial"


SnapshotOption = Annotated[SnapshotMode, typer.Option(
    help="full: centres of the region missing from the file are marked unlisted; partial: an extract; "
         "auto: full when the file lists closed (폐지) centres.")]


@app.command("seoul")
def import_seoul(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                 snapshot: SnapshotOption = SnapshotMode.auto) -> None:
    """Import Seoul OA-20300 '서울시 어린이집 정보(표준 데이터)' (cp949 or UTF-8)."""
    from geo.ingest.childcare import import_seoul_oa20300

    run_import(import_seoul_oa20300, path, snapshot=snapshot.value)


@app.command("national")
def import_national(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                    snapshot: SnapshotOption = SnapshotMode.auto) -> None:
    """Import the national 어린이집 기본정보 export (childinfo format)."""
    from geo.ingest.boundaries import load_missing_boundaries, regions_in_national_file, sido_codes_for_regions
    from geo.ingest.childcare import import_national_basic

    # The regions the file names get their boundaries first, so that rows find their 시군구 and 법정동.
    regions = sido_codes_for_regions(regions_in_national_file(path))
    for loaded in load_missing_boundaries(migrated_engine(direct=True), regions):
        console.print("boundaries of the file's regions: " + loaded.summary())
    run_import(import_national_basic, path, snapshot=snapshot.value)


@app.command("population")
def import_population(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import a MOIS 주민등록 population export (single ages, or ages 0-5 by area) onto 행정동."""
    from geo.ingest.population import import_mois_population

    run_import(import_mois_population, path)
