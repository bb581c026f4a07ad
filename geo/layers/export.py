"""Files of a (filtered) layer: GeoJSON, GeoPackage, CSV (WKT geometry) and FlatGeobuf, written by pyogrio."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection

from geo.layers.base import Layer
from geo.layers.features import ItemsQuery, frame_statement


@dataclass(frozen=True)
class ExportFormat:
    """An export format: pyogrio driver, file suffix and media type."""

    driver: str
    suffix: str
    media_type: str


FORMATS: dict[str, ExportFormat] = {
    "geojson": ExportFormat("GeoJSON", ".geojson", "application/geo+json"),
    "gpkg": ExportFormat("GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "csv": ExportFormat("CSV", ".csv", "text/csv"),
    "fgb": ExportFormat("FlatGeobuf", ".fgb", "application/flatgeobuf"),
}


def layer_frame(conn: Connection, layer: Layer, query: ItemsQuery) -> gpd.GeoDataFrame:
    """Every feature of ``layer`` matching ``query`` (bbox, datetime, filter) as a GeoDataFrame in ``query.crs``."""
    frame = gpd.read_postgis(frame_statement(layer, query), conn, geom_col="geometry", crs="EPSG:4326")
    for prop in layer.properties:
        if prop.type == "array":  # no list columns in GPKG/CSV/FGB: one comma-separated string
            frame[prop.name] = frame[prop.name].map(lambda v: ",".join(v) if isinstance(v, list) else v)
        elif prop.type == "number":
            frame[prop.name] = pd.to_numeric(frame[prop.name], errors="coerce")
        elif prop.type == "date-time":
            frame[prop.name] = pd.to_datetime(frame[prop.name], utc=True)
    if query.crs.srid != 4326:
        frame = frame.to_crs(epsg=query.crs.srid)
    return frame


def export_layer(conn: Connection, layer: Layer, query: ItemsQuery, fmt: str, directory: Path | None = None) -> Path:
    """Write the matching features of ``layer`` as ``fmt`` (a key of FORMATS) and return the file's path."""
    spec = FORMATS[fmt]
    frame = layer_frame(conn, layer, query)
    target_dir = Path(directory or tempfile.mkdtemp(prefix="dolbom-export-"))
    path = target_dir / f"{layer.id}{spec.suffix}"
    options: dict[str, str] = {"GEOMETRY": "AS_WKT"} if fmt == "csv" else {}
    frame.to_file(path, driver=spec.driver, engine="pyogrio", layer=layer.id if fmt == "gpkg" else None,
                  **({"layer_options": options} if options else {}))
    return path
