"""OGC API - Tiles (Part 1, OGC 20-057) documents over the layer registry: tile matrix sets, tileset lists, tileset
metadata (OGC 17-083r4, TMS 2.0) and the check of a requested tile against them.

Only ``WebMercatorQuad`` is offered: the renderer (``tiles.mvt``, ``ST_TileEnvelope``) and the tile versions
(``layer_changes``, envelopes in EPSG:3857) work in the Web Mercator quad tree; another tile matrix set would need
its own envelopes and projection in both, not just another URL. The definitions come from ``morecantile``.
URLs are built by the caller (``base`` is the API root, e.g. ``http://host/ogc``): nothing here knows HTTP.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import morecantile

from geo.errors import NotFound
from geo.layers.base import Layer

WEB_MERCATOR_QUAD = "WebMercatorQuad"
TILE_MATRIX_SETS = (WEB_MERCATOR_QUAD,)
MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
TILESETS_VECTOR = REL + "tilesets-vector"
TILING_SCHEMES = REL + "tiling-schemes"
TILING_SCHEME = REL + "tiling-scheme"
TEMPLATE = "{tileMatrix}/{tileRow}/{tileCol}"
COMBINED_TITLE = "dolbom map (every layer)"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixsetlimits",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixsetlimits",
]
# MVT geometry dimension of a layer's geometry type (TMS 2.0 tileset metadata, ``layers[].geometryDimension``).
_DIMENSIONS = {"Point": 0, "MultiPoint": 0, "LineString": 1, "MultiLineString": 1, "Polygon": 2, "MultiPolygon": 2}
_SCHEMA_TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
    "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
    "array": {"type": "string"},  # MVT has no arrays: the renderer writes them as text
}

Bounds = tuple[float, float, float, float]


def tile_matrix_set(tms_id: str) -> morecantile.TileMatrixSet:
    """The offered tile matrix set ``tms_id``; NotFound for any other."""
    if tms_id not in TILE_MATRIX_SETS:
        raise NotFound(f"no tile matrix set {tms_id!r}", tileMatrixSets=list(TILE_MATRIX_SETS))
    return _load(tms_id)


@lru_cache(maxsize=len(TILE_MATRIX_SETS))
def _load(tms_id: str) -> morecantile.TileMatrixSet:
    """morecantile's definition, parsed once (``morecantile.tms.get`` parses its JSON file on every call)."""
    return morecantile.tms.get(tms_id)


@lru_cache(maxsize=len(TILE_MATRIX_SETS))
def tile_matrix_set_document(tms_id: str) -> dict[str, Any]:
    """The TMS 2.0 JSON definition of ``tms_id`` (as morecantile holds it)."""
    return tile_matrix_set(tms_id).model_dump(exclude_none=True, mode="json")


def tile_matrix_sets_document(base: str) -> dict[str, Any]:
    """``/tileMatrixSets``: each offered set with its URI and a link to its definition."""
    sets = []
    for tms_id in TILE_MATRIX_SETS:
        tms = tile_matrix_set(tms_id)
        sets.append({"id": tms_id, "title": tms.title, "uri": tms.uri, "crs": str(tms.crs.root),
                     "links": [{"rel": "self", "href": f"{base}/tileMatrixSets/{tms_id}", "type": JSON,
                                "title": f"definition of {tms_id}"},
                               {"rel": TILING_SCHEME, "href": f"{base}/tileMatrixSets/{tms_id}", "type": JSON,
                                "title": f"definition of {tms_id}"}]})
    return {"tileMatrixSets": sets,
            "links": [{"rel": "self", "href": f"{base}/tileMatrixSets", "type": JSON, "title": "tile matrix sets"}]}


def zoom_range(layers: list[Layer]) -> tuple[int, int]:
    """The tile matrices (zooms) in which at least one of ``layers`` has tiles."""
    return min(layer.minzoom for layer in layers), max(layer.maxzoom for layer in layers)


def tile_matrix_set_limits(tms_id: str, layers: list[Layer], bounds: Bounds | None) -> list[dict[str, Any]]:
    """The rows and columns of each tile matrix (zoom) of ``layers`` that meet ``bounds`` (CRS84 degrees; the
    whole matrix when None)."""
    low, high = zoom_range(layers)
    return [_limit(tile_matrix_set(tms_id), z, bounds) for z in range(low, high + 1)]


def _limit(tms: morecantile.TileMatrixSet, z: int, bounds: Bounds | None) -> dict[str, Any]:
    """The rows and columns of tile matrix ``z`` that meet ``bounds`` (all of them when None)."""
    matrix = tms.matrix(z)
    if bounds is None:
        rows, cols = (0, matrix.matrixHeight - 1), (0, matrix.matrixWidth - 1)
    else:
        west, south, east, north = bounds
        upper_left, lower_right = tms.tile(west, north, z), tms.tile(east, south, z)
        rows = (max(0, upper_left.y), min(matrix.matrixHeight - 1, lower_right.y))
        cols = (max(0, upper_left.x), min(matrix.matrixWidth - 1, lower_right.x))
    return {"tileMatrix": matrix.id, "minTileRow": rows[0], "maxTileRow": rows[1], "minTileCol": cols[0],
            "maxTileCol": cols[1]}


def check_tile(tms_id: str, tile_matrix: str, row: int, col: int, layers: list[Layer],
               bounds: Bounds | None) -> int:
    """The zoom of ``tile_matrix`` when the tile lies within the tile matrix set limits of ``layers`` (zoom range
    and ``bounds``); NotFound otherwise (OGC API - Tiles /req/core/tc-error: out of range is a 404)."""
    tms = tile_matrix_set(tms_id)
    ids = [matrix.id for matrix in tms.tileMatrices]
    if tile_matrix not in ids:
        raise NotFound(f"no tile matrix {tile_matrix!r} in {tms_id}", tileMatrices=f"{ids[0]}-{ids[-1]}")
    z = int(tile_matrix)
    matrix = tms.matrix(z)
    if row >= matrix.matrixHeight or col >= matrix.matrixWidth:
        raise NotFound(f"tile matrix {tile_matrix} of {tms_id} has {matrix.matrixHeight} rows and "
                       f"{matrix.matrixWidth} columns", tileRow=row, tileCol=col)
    low, high = zoom_range(layers)
    if not low <= z <= high:
        raise NotFound(f"no tiles at tile matrix {tile_matrix}: the tileset has tile matrices {low}-{high}",
                       minTileMatrix=str(low), maxTileMatrix=str(high))
    limit = _limit(tms, z, bounds)
    if not (limit["minTileRow"] <= row <= limit["maxTileRow"] and limit["minTileCol"] <= col <= limit["maxTileCol"]):
        raise NotFound(f"tile {tile_matrix}/{row}/{col} lies outside the tileset's limits (no data there)",
                       **limit)
    return z


def union_bounds(boxes: list[Bounds]) -> Bounds | None:
    """The box covering ``boxes`` (None if there are none)."""
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _tileset_links(tileset_url: str, tms_id: str, base: str, tilejson_url: str | None) -> list[dict[str, Any]]:
    return [
        {"rel": "self", "href": tileset_url, "type": JSON, "title": f"tileset in {tms_id}"},
        {"rel": TILING_SCHEME, "href": f"{base}/tileMatrixSets/{tms_id}", "type": JSON,
         "title": f"definition of {tms_id}"},
        {"rel": "item", "href": f"{tileset_url}/{TEMPLATE}", "type": MVT, "templated": True,
         "title": "Mapbox vector tiles (templated link)"},
        *([{"rel": "alternate", "href": tilejson_url, "type": JSON, "title": "TileJSON 3.0 of these tiles"}]
          if tilejson_url else []),
    ]


def tilesets_document(tiles_url: str, base: str, *, title: str) -> dict[str, Any]:
    """A tilesets list (``.../tiles``): one vector tileset per offered tile matrix set."""
    tilesets = []
    for tms_id in TILE_MATRIX_SETS:
        tms = tile_matrix_set(tms_id)
        tilesets.append({"title": f"{title} ({tms_id})", "dataType": "vector", "crs": str(tms.crs.root),
                         "tileMatrixSetURI": tms.uri,
                         "links": _tileset_links(f"{tiles_url}/{tms_id}", tms_id, base, None)})
    return {"tilesets": tilesets,
            "links": [{"rel": "self", "href": tiles_url, "type": JSON, "title": f"tilesets of {title}"}]}


def tileset_document(tileset_url: str, tms_id: str, layers: list[Layer], bounds: Bounds | None, base: str, *,
                     title: str, description: str, tilejson_url: str | None = None) -> dict[str, Any]:
    """Tileset metadata (TMS 2.0) of ``layers`` in ``tms_id``: limits, bounding box, vector layers and links."""
    tms = tile_matrix_set(tms_id)
    low, high = zoom_range(layers)
    doc: dict[str, Any] = {
        "title": title,
        "description": description,
        "dataType": "vector",
        "crs": str(tms.crs.root),
        "tileMatrixSetURI": tms.uri,
        "tileMatrixSetLimits": tile_matrix_set_limits(tms_id, layers, bounds),
        "layers": [_vector_layer(layer) for layer in layers],
        "links": _tileset_links(tileset_url, tms_id, base, tilejson_url),
    }
    if bounds is not None:
        west, south, east, north = bounds
        doc["boundingBox"] = {"lowerLeft": [west, south], "upperRight": [east, north], "crs": CRS84}
        doc["centerPoint"] = {"coordinates": [(west + east) / 2, (south + north) / 2], "crs": CRS84,
                              "tileMatrix": str(max(low, min(12, high)))}
    return doc


def _vector_layer(layer: Layer) -> dict[str, Any]:
    """One MVT layer of a tileset: its id (the MVT layer name), zoom range and the fields of its widest zoom."""
    widest = layer.properties_at_zoom(layer.maxzoom)
    properties: dict[str, Any] = {
        "id": {"type": "integer" if layer.id_column.type.python_type is int else "string"}}
    for prop in layer.properties:
        if prop.name in widest:
            properties[prop.name] = {**_SCHEMA_TYPES[prop.type], "description": prop.description}
    return {"id": layer.id, "title": layer.title, "description": layer.description, "dataType": "vector",
            "geometryDimension": _DIMENSIONS.get(layer.geometry_type, 2), "minTileMatrix": str(layer.minzoom),
            "maxTileMatrix": str(layer.maxzoom),
            "propertiesSchema": {"type": "object", "properties": properties}}


def landing_links(base: str) -> list[dict[str, Any]]:
    """The landing page's links to the dataset tilesets (the combined map) and the tile matrix sets."""
    return [{"rel": TILESETS_VECTOR, "href": f"{base}/tiles", "type": JSON,
             "title": "vector tilesets of the combined map (every layer)"},
            {"rel": TILING_SCHEMES, "href": f"{base}/tileMatrixSets", "type": JSON, "title": "tile matrix sets"}]


def collection_links(base: str, collection_id: str) -> list[dict[str, Any]]:
    """A collection's link to its vector tilesets."""
    return [{"rel": TILESETS_VECTOR, "href": f"{base}/collections/{collection_id}/tiles", "type": JSON,
             "title": "vector tilesets"}]
