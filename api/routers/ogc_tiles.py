"""OGC API - Tiles (Part 1 Core, OGC 20-057) under ``/ogc``: tile matrix sets, vector tilesets of each collection
and of the combined map (the dataset), their metadata and their tiles.

A tile is the same tile ``/tiles/{layer}/{z}/{x}/{y}.mvt`` serves (the handler of ``api.routers.tiles`` renders it,
with its ETags and cache); this router only maps ``{tileMatrix}/{tileRow}/{tileCol}`` of ``WebMercatorQuad`` to
z/y/x and answers 404 outside the tileset's limits (its zoom range and the data's extent).
"""

from __future__ import annotations

import html
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.routing import APIRoute

from api.deps import AppStateDep, TileCacheDep, read_connection
from api.routers import tiles as tile_routes
from api.routers.features import (
    JSON_OR_HTML,
    CollectionId,
    FormatParam,
    OgcRoute,
    _layer,
    _links_html,
    _page,
    _wants_html,
)
from api.routers.layer_common import dumps, etag_response
from geo.db import fetch_all_async
from geo.layers.base import Layer
from geo.layers.features import extent_statement
from geo.layers.registry import LAYERS
from tiles.ogc import (
    COMBINED_TITLE,
    MVT,
    TILE_MATRIX_SETS,
    Bounds,
    check_tile,
    tile_matrix_set,
    tile_matrix_set_document,
    tile_matrix_sets_document,
    tileset_document,
    tilesets_document,
    union_bounds,
)

router = APIRouter(prefix="/ogc", tags=["ogc-tiles"], route_class=OgcRoute)

TileMatrixSetId = Annotated[str, Path(max_length=100, description="a tile matrix set id (WebMercatorQuad)",
                                      json_schema_extra={"enum": list(TILE_MATRIX_SETS)})]
TileMatrix = Annotated[str, Path(max_length=10, description="a tile matrix of the set (the zoom in WebMercatorQuad)",
                                 examples=["14"])]
TileRow = Annotated[int, Path(ge=0, le=2**24 - 1, description="row of the tile in its tile matrix (y)",
                              examples=[6345])]
TileCol = Annotated[int, Path(ge=0, le=2**24 - 1, description="column of the tile in its tile matrix (x)",
                              examples=[13970])]
TILE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The Mapbox vector tile (may hold no feature where the limits include no data)",
          "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "Not modified: the tile matching If-None-Match (ETag) is still current"}}
JSON = "application/json"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _respond(request: Request, f: str | None, body: dict[str, Any], title: str) -> Response:
    """JSON with an ETag, or an HTML page of the document's links (``f=html``)."""
    if _wants_html(request, f):
        return _page(title, f"<p>{html.escape(body.get('description', ''))}</p>" + _links_html(body.get("links", [])))
    return etag_response(request, dumps(body), JSON)


# The data's extent decides the tilesets' limits; computing it (ST_Extent over a whole layer) costs more than a
# cached tile, so each process keeps it this long: a feature added beyond the extent is in the limits (and its
# tiles stop being 404) within a minute. Metadata and tiles read the same cache, so they agree.
BOUNDS_TTL_S = 60.0
_bounds_cache: dict[tuple[str, tuple[str, ...]], tuple[float, Bounds | None]] = {}


async def _bounds(request: Request, state: AppStateDep, layers: list[Layer]) -> Bounds | None:
    """The CRS84 box of ``layers``' data (None when they hold no feature), at most ``BOUNDS_TTL_S`` old (per
    database: the configured one)."""
    key = (state.settings.effective_database_url, tuple(layer.id for layer in layers))
    cached = _bounds_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < BOUNDS_TTL_S:
        return cached[1]
    boxes = []
    async with read_connection(request, state) as conn:
        for layer in layers:
            row = (await fetch_all_async(conn, extent_statement(layer)))[0]
            if row[0] is not None:
                boxes.append((float(row[0]), float(row[1]), float(row[2]), float(row[3])))
    bounds = union_bounds(boxes)
    _bounds_cache[key] = (time.monotonic(), bounds)
    return bounds


@router.get("/tileMatrixSets", summary="Tile matrix sets (tiling schemes) of the tiles", response_class=Response,
            responses=JSON_OR_HTML)
async def tile_matrix_sets(request: Request, f: FormatParam = None) -> Response:
    """The offered tile matrix sets (WebMercatorQuad) with links to their definitions."""
    body = tile_matrix_sets_document(_base(request))
    if _wants_html(request, f):
        return _page("Tile matrix sets", _links_html([s["links"][0] | {"title": s["title"]}
                                                      for s in body["tileMatrixSets"]]))
    return etag_response(request, dumps(body), JSON)


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="Definition of a tile matrix set (OGC TMS 2.0 JSON)",
            response_class=Response, responses=JSON_OR_HTML)
async def tile_matrix_set_definition(request: Request, tileMatrixSetId: TileMatrixSetId,
                                     f: FormatParam = None) -> Response:
    """The TMS 2.0 definition (from morecantile): CRS, origin, scale and size of every tile matrix."""
    body = tile_matrix_set_document(tileMatrixSetId)
    if _wants_html(request, f):
        rows = "".join(f"<tr><td>{m['id']}</td><td>{m['scaleDenominator']:.2f}</td><td>{m['matrixWidth']}</td>"
                       f"<td>{m['matrixHeight']}</td></tr>" for m in body["tileMatrices"])
        return _page(body.get("title", tileMatrixSetId),
                     "<table><tr><th>tile matrix</th><th>scale denominator</th><th>columns</th><th>rows</th></tr>"
                     f"{rows}</table>")
    return etag_response(request, dumps(body), JSON)


@router.get("/tiles", summary="Vector tilesets of the combined map (every layer)", response_class=Response,
            responses=JSON_OR_HTML)
async def dataset_tilesets(request: Request, f: FormatParam = None) -> Response:
    """The tilesets of the dataset: every layer in one tile, each layer an MVT layer named by its id."""
    return _respond(request, f, tilesets_document(_base(request) + "/tiles", _base(request), title=COMBINED_TITLE),
                    "Tilesets of the combined map")


@router.get("/tiles/{tileMatrixSetId}", summary="Tileset metadata of the combined map", response_class=Response,
            responses=JSON_OR_HTML)
async def dataset_tileset(request: Request, tileMatrixSetId: TileMatrixSetId, state: AppStateDep,
                          f: FormatParam = None) -> Response:
    """Limits, bounding box, vector layers and the templated tile link of the combined map's tileset."""
    tile_matrix_set(tileMatrixSetId)  # NotFound for an unknown set
    tms_id = tileMatrixSetId
    layers = list(LAYERS.values())
    root = str(request.base_url).rstrip("/")
    body = tileset_document(f"{_base(request)}/tiles/{tms_id}", tms_id, layers,
                            await _bounds(request, state, layers),
                            _base(request), title=COMBINED_TITLE,
                            description="; ".join(layer.title for layer in layers),
                            tilejson_url=f"{root}/tiles/{tile_routes.COMBINED}/tilejson.json")
    return _respond(request, f, body, f"Combined map tileset ({tms_id})")


@router.get("/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}", summary="A tile of the combined map",
            response_class=Response, responses=TILE)
async def dataset_tile(request: Request, tileMatrixSetId: TileMatrixSetId, tileMatrix: TileMatrix, tileRow: TileRow,
                       tileCol: TileCol, state: AppStateDep, cache: TileCacheDep) -> Response:
    """The tile of every layer at ``tileMatrix/tileRow/tileCol`` (= ``/tiles/all/{z}/{x}/{y}.mvt``)."""
    return await _tile(request, tile_routes.COMBINED, list(LAYERS.values()), tileMatrixSetId, tileMatrix, tileRow,
                       tileCol, state, cache)


@router.get("/collections/{collection_id}/tiles", summary="Vector tilesets of a collection", response_class=Response,
            responses=JSON_OR_HTML)
async def collection_tilesets(request: Request, collection_id: CollectionId, f: FormatParam = None) -> Response:
    """The tilesets of one layer (one per tile matrix set)."""
    layer = _layer(collection_id)
    base = _base(request)
    body = tilesets_document(f"{base}/collections/{layer.id}/tiles", base, title=layer.title)
    return _respond(request, f, body, f"Tilesets of {layer.id}")


@router.get("/collections/{collection_id}/tiles/{tileMatrixSetId}", summary="Tileset metadata of a collection",
            response_class=Response, responses=JSON_OR_HTML)
async def collection_tileset(request: Request, collection_id: CollectionId, tileMatrixSetId: TileMatrixSetId,
                             state: AppStateDep, f: FormatParam = None) -> Response:
    """Limits, bounding box, the vector layer's fields and the templated tile link of one layer's tileset."""
    layer = _layer(collection_id)
    tile_matrix_set(tileMatrixSetId)  # NotFound for an unknown set
    tms_id = tileMatrixSetId
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    body = tileset_document(f"{base}/collections/{layer.id}/tiles/{tms_id}", tms_id, [layer],
                            await _bounds(request, state, [layer]), base, title=layer.title,
                            description=layer.description,
                            tilejson_url=f"{root}/tiles/{layer.id}/tilejson.json")
    return _respond(request, f, body, f"{layer.id} tileset ({tms_id})")


@router.get("/collections/{collection_id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            summary="A vector tile of a collection", response_class=Response, responses=TILE)
async def collection_tile(request: Request, collection_id: CollectionId, tileMatrixSetId: TileMatrixSetId,
                          tileMatrix: TileMatrix, tileRow: TileRow, tileCol: TileCol, state: AppStateDep,
                          cache: TileCacheDep) -> Response:
    """The layer's tile at ``tileMatrix/tileRow/tileCol`` (= ``/tiles/{id}/{z}/{x}/{y}.mvt``)."""
    layer = _layer(collection_id)
    return await _tile(request, layer.id, [layer], tileMatrixSetId, tileMatrix, tileRow, tileCol, state, cache)


async def _tile(request: Request, layer_id: str, layers: list[Layer], tms_id: str, tile_matrix: str, row: int,
                col: int, state: AppStateDep, cache: TileCacheDep) -> Response:
    """404 outside the tileset's limits, else the tile of ``/tiles/{layer_id}/{z}/{col}/{row}.mvt``."""
    z = check_tile(tms_id, tile_matrix, row, col, layers, await _bounds(request, state, layers))
    return await tile_routes.tile(request=request, layer_id=layer_id, z=z, x=col, y=row, state=state, cache=cache)


# HEAD on every read (as in ``api.routers.features``), kept out of the OpenAPI documents.
for _route in list(router.routes):
    if isinstance(_route, APIRoute) and "GET" in (_route.methods or ()):
        router.add_api_route(_route.path.removeprefix("/ogc"), _route.endpoint, methods=["HEAD"],
                             include_in_schema=False, name=f"{_route.name}_head", response_class=Response)
