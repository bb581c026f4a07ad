"""``dolbom osm``: OSM road networks (pgRouting) for walking and driving catchments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="OSM road networks for walking/driving catchments.", no_args_is_help=True)


@app.command("import")
def osm_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    network: Annotated[str | None, typer.Option(help="Network name (default: file stem)")] = None,
) -> None:
    """Import an OSM XML extract's roads as a pgRouting network."""
    from geo.ingest.osm import import_osm_network
    from geo.ingest.run import ImportLimits

    engine = migrated_engine(direct=True)
    try:
        result = import_osm_network(engine, path, network=network or path.stem, progress=True,
                                    limits=ImportLimits.from_settings(get_settings()))
    except DolbomError as exc:
        fail(exc)
    console.print(result.summary())
