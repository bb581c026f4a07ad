"""``dolbom disclosures`` and ``dolbom evaluations``: import a published list of disclosed violations (위반사실
공표) or of evaluation grades (평가제), and the daily refresh of which disclosures are published today."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, migrated_engine
from geo.settings import get_settings

app = typer.Typer(help="Sanctions and the public disclosure of violations (영유아보육법 §49-3): import a published "
                  "list, refresh what is published today.", no_args_is_help=True)
evaluations_app = typer.Typer(help="Evaluation grades (평가제, A-D) of centres: import a list.", no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                              help="CSV (UTF-8 or cp949) or XLSX; columns in docs/disclosure.md")]


@app.command("import")
def disclosures_import(file: FileArgument) -> None:
    """Import a list of disclosed violations: one sanction and its disclosure per row. A bad row stops the import
    with its row and column named, and nothing is written."""
    from geo.disclosure.files import import_disclosures

    engine = migrated_engine(direct=True)
    with engine.begin() as conn:
        summary = import_disclosures(conn, file, now=get_settings().now())
    console.print(f"{file.name}: {summary.rows} rows, {summary.inserted} disclosures added, "
                  f"{summary.unchanged} already present")


@app.command("refresh")
def disclosures_refresh() -> None:
    """Mark the disclosures published today (run daily after midnight, Seoul): those that started appear on the
    map, those that ended leave it (their tiles get new versions)."""
    from geo.disclosure.records import refresh_shown

    engine = migrated_engine()
    with engine.begin() as conn:
        changed = refresh_shown(conn, now=get_settings().now())
    console.print(f"{changed} disclosures started or ended")


@evaluations_app.command("import")
def evaluations_import(file: FileArgument) -> None:
    """Import evaluation grades (어린이집코드, 평가등급 A-D, 평가일): the history grows, each centre shows its latest.
    A bad row stops the import with its row and column named, and nothing is written."""
    from geo.disclosure.files import import_evaluations

    engine = migrated_engine(direct=True)
    with engine.begin() as conn:
        summary = import_evaluations(conn, file)
    console.print(f"{file.name}: {summary.rows} rows, {summary.inserted} grades written, "
                  f"{summary.unchanged} unchanged")
