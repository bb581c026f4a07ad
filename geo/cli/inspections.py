"""``dolbom inspections``: the daily job of the inspections (orders past their deadline become overdue)."""

from __future__ import annotations

from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError

app = typer.Typer(help="Inspections (지도점검): the daily job.", no_args_is_help=True)


@app.command("overdue")
def inspections_overdue(
    district: Annotated[str | None, typer.Option(help="Only this 구 (5-digit code)")] = None,
) -> None:
    """Move every corrective order whose deadline's day is over (Seoul) to overdue; prints the findings moved."""
    from geo.inspections.register import mark_overdue

    try:
        with migrated_engine().begin() as conn:
            moved = mark_overdue(conn, district_code=district)
    except DolbomError as exc:
        fail(exc)
    console.print(f"{len(moved)} finding(s) overdue" + (f": {', '.join(map(str, moved))}" if moved else ""))
