"""Files of a (filtered) layer: GeoJSON, GeoPackage, CSV (WKT geometry) and FlatGeobuf, written by pyogrio.

Encodings, chosen for what GDAL and QGIS read best and the same wherever the format allows (docs/layers.md):

- booleans: GeoJSON ``true``/``false``; GeoPackage and FlatGeobuf boolean fields (``Integer(Boolean)``); CSV
  ``true``/``false``;
- dates (``data_date``): GeoJSON and CSV ``YYYY-MM-DD``; GeoPackage a ``Date`` field; FlatGeobuf, which has no
  date type, a ``DateTime`` at 00:00 without a time zone;
- date-times: GeoJSON and CSV RFC 3339 in UTC (``...Z``); GeoPackage and FlatGeobuf ``DateTime`` (UTC);
- string arrays (``services``): GeoJSON a JSON array; everywhere else the compact JSON text of that array
  (``["holiday","twenty_four_hour"]``, see ``array_text``), in GeoPackage as a string field of subtype JSON (what
  GDAL itself writes for a string list, and what QGIS reads as a list); vector tiles carry the same text
  (``tiles.mvt``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
from sqlalchemy import Connection

from geo.layers.base import Layer
from geo.layers.features import ItemsQuery, frame_statement, selected


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
# Part of an export's ETag: bump it when the bytes written for the same data change (2: typed booleans and dates,
# arrays as JSON text), so that a client does not keep a file of the old encoding on a 304.
ENCODING_VERSION = 2
# The Arrow type of each property type in GeoPackage and FlatGeobuf (arrays: their JSON text).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
    "date": pa.date32(), "date-time": pa.timestamp("us", tz="UTC"), "array": pa.string(),
}
# Arrow's canonical JSON extension type: GDAL (3.8+) makes such a string field of subtype JSON.
_JSON_FIELD = {b"ARROW:extension:name": b"arrow.json"}


def array_text(value: Any) -> str | None:
    """The one text encoding of a string array outside GeoJSON: compact JSON (``["a","b"]``), None for null
    (the same text as PostgreSQL's ``array_to_json(...)::text``, used by the vector tiles)."""
    if value is None:
        return None
    return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))


def layer_frame(conn: Connection, layer: Layer, query: ItemsQuery) -> gpd.GeoDataFrame:
    """Every feature of ``layer`` matching ``query`` (bbox, datetime, filter, properties, sortby) as a GeoDataFrame
    in ``query.crs``: integers and numbers numeric, booleans nullable booleans, dates ``datetime.date``, date-times
    UTC timestamps, arrays lists of strings."""
    frame = gpd.read_postgis(frame_statement(layer, query), conn, geom_col="geometry", crs="EPSG:4326")
    names = set(selected(layer, query))
    for prop in layer.properties:
        if prop.name not in names:
            continue
        if prop.type == "number":
            frame[prop.name] = pd.to_numeric(frame[prop.name], errors="coerce")
        elif prop.type == "integer":  # nullable: a null keeps the column integer (not float with NaN)
            frame[prop.name] = pd.array(pd.to_numeric(frame[prop.name], errors="coerce"), dtype="Int64")
        elif prop.type == "boolean":
            frame[prop.name] = pd.array(frame[prop.name], dtype="boolean")
        elif prop.type == "date-time":
            frame[prop.name] = pd.to_datetime(frame[prop.name], utc=True)
    if query.crs.srid != 4326:
        frame = frame.to_crs(epsg=query.crs.srid)
    return frame


def _csv_text(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _write_csv(frame: gpd.GeoDataFrame, layer: Layer, names: set[str], path: Path) -> None:
    """CSV with a WKT geometry column and every value as text (booleans true/false, ISO dates, JSON arrays)."""
    out = frame.copy()
    for prop in layer.properties:
        if prop.name not in names:
            continue
        if prop.type == "array":
            out[prop.name] = out[prop.name].map(array_text)
        elif prop.type in ("boolean", "date", "date-time"):
            out[prop.name] = pd.Series([_csv_text(v) for v in out[prop.name]], index=out.index, dtype=object)
    out.to_file(path, driver="CSV", engine="pyogrio", layer_options={"GEOMETRY": "AS_WKT"})


def _write_arrow(frame: gpd.GeoDataFrame, layer: Layer, names: set[str], path: Path, driver: str) -> None:
    """GeoPackage or FlatGeobuf through Arrow, so that dates are dates (date32) and arrays JSON fields."""
    out = frame.copy()
    arrays = [p.name for p in layer.properties if p.name in names and p.type == "array"]
    for name in arrays:
        out[name] = out[name].map(array_text)
    table = pa.table(out.to_arrow(geometry_encoding="WKB"))
    # Each column typed by its property, also when it holds only nulls (or no row), which Arrow infers as null,
    # a type GDAL cannot make a field of.
    wanted = {"id": pa.int64() if layer.id_column.type.python_type is int else pa.string()}
    wanted.update({p.name: _ARROW_TYPES[p.type] for p in layer.properties if p.name in names})
    for name, arrow_type in wanted.items():
        i = table.schema.get_field_index(name)
        metadata = _JSON_FIELD if name in arrays else None
        table = table.set_column(i, pa.field(name, arrow_type, metadata=metadata), table.column(i).cast(arrow_type))
    pyogrio.write_arrow(table, path, driver=driver, layer=layer.id if driver == "GPKG" else None,
                        geometry_name="geometry", geometry_type=_ogr_geometry_type(layer),
                        crs=frame.crs.to_wkt() if frame.crs is not None else None)


def _ogr_geometry_type(layer: Layer) -> str:
    return {"Point": "Point", "MultiPolygon": "MultiPolygon"}.get(layer.geometry_type, "Unknown")


def export_layer(conn: Connection, layer: Layer, query: ItemsQuery, fmt: str, directory: Path | None = None) -> Path:
    """Write the matching features of ``layer`` as ``fmt`` (a key of FORMATS) and return the file's path."""
    spec = FORMATS[fmt]
    frame = layer_frame(conn, layer, query)
    names = set(selected(layer, query))
    target_dir = Path(directory or tempfile.mkdtemp(prefix="dolbom-export-"))
    path = target_dir / f"{layer.id}{spec.suffix}"
    if fmt == "csv":
        _write_csv(frame, layer, names, path)
    elif fmt in ("gpkg", "fgb"):
        _write_arrow(frame, layer, names, path, spec.driver)
    else:  # GeoJSON: arrays stay JSON arrays, dates ISO text (through Arrow, as GDAL writes them)
        _write_geojson(frame, layer, names, path, spec.driver)
    return path


def _write_geojson(frame: gpd.GeoDataFrame, layer: Layer, names: set[str], path: Path, driver: str) -> None:
    """GeoJSON through Arrow, string arrays as lists of strings, and every column typed by its property when
    Arrow infers ``null`` (an all-empty array column, such as a layer whose centres declare no staff language,
    or an export matching nothing): GDAL cannot make a field of type null."""
    table = pa.table(frame.to_arrow(geometry_encoding="WKB"))
    wanted = {"id": pa.int64() if layer.id_column.type.python_type is int else pa.string()}
    wanted.update({p.name: pa.list_(pa.string()) if p.type == "array" else _ARROW_TYPES[p.type]
                   for p in layer.properties if p.name in names})
    for name, arrow_type in wanted.items():
        i = table.schema.get_field_index(name)
        column = table.column(i)
        if pa.types.is_null(column.type) or (pa.types.is_list(column.type) and column.type != arrow_type):
            table = table.set_column(i, name, column.cast(arrow_type))
    pyogrio.write_arrow(table, path, driver=driver, geometry_name="geometry", geometry_type=_ogr_geometry_type(layer),
                        crs=frame.crs.to_wkt() if frame.crs is not None else None)
