"""Vector tiles (MVT) per layer and combined (``all``), with TileJSON 3.0 and ETags that follow the data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.deps import AppStateDep, ReadConnDep, TileCacheDep, read_connection
from api.routers.layer_common import dumps, etag_response
from geo.db import fetch_all_async
from geo.errors import NotFound
from geo.layers.base import Layer
from geo.layers.features import extent_statement
from geo.layers.registry import LAYERS, get_layer
from geo.layers.versions import compiled_tile_version
from geo.ops.replicas import PRIMARY
from geo.validation import reject_control_characters
from tiles.cache import tile_box_3857, tile_etag
from tiles.mvt import MARGIN, check_tile, compiled_tile, compiled_tile_and_version, definition_hash, layers_at_zoom
from tiles.tilejson import tilejson

MAX_ZOOM = 19  # OpenStreetMap's deepest zoom; tiles below it hold one building
COMBINED = "all"
LayerId = Annotated[str, Path(max_length=100, description="a registered layer id, or 'all'",
                              json_schema_extra={"enum": [*LAYERS, COMBINED]})]

router = APIRouter(prefix="/tiles", tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"


def _layers(layer_id: str) -> list[Layer]:
    reject_control_characters(layer_id, param="layer_id")
    if layer_id == COMBINED:
        return list(LAYERS.values())
    return [get_layer(layer_id)]


@router.get("/{layer_id}/{z}/{x}/{y}.mvt", summary="Mapbox vector tile of a layer (or 'all' layers)",
            response_class=Response, responses={
                200: {"description": "The tile (may be empty)",
                      "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
                304: {"description": "Not modified: the tile matching If-None-Match (ETag) is still current"}})
async def tile(request: Request, layer_id: LayerId, z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
               x: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1)], y: Annotated[int, Path(ge=0, le=2**MAX_ZOOM - 1)],
               state: AppStateDep, cache: TileCacheDep) -> Response:
    """The tile z/x/y (XYZ scheme); ETag = data version of exactly this tile, 304 on If-None-Match.

    A read connection is taken only when the cache cannot answer; a cold tile is one statement (its version and
    its body), a tile cached in an older version one or two (the version, then the body if it changed)."""
    key = f"{layer_id}/{z}/{x}/{y}"
    current = cache.current(key)  # only keys served before are there: already validated
    if current is not None:  # the change feed vouches for its version: no database round trip
        return etag_response(request, current.body, MVT, etag=current.etag)
    epoch = cache.epoch
    layers = _layers(layer_id)
    check_tile(z, x, y)
    active = layers_at_zoom(layers, z)
    if not active:
        raise NotFound(f"{layer_id} has no tiles at zoom {z}", minzoom=min(la.minzoom for la in layers),
                       maxzoom=max(la.maxzoom for la in layers))
    ids = tuple(la.id for la in active)
    definition = definition_hash(active, z)
    tile_params = {"tile_z": z, "tile_x": x, "tile_y": y}
    async with read_connection(request, state) as conn:
        if not cache.seen(key):  # cold: version and tile in one round trip
            sql, constants = compiled_tile_and_version(ids, z)
            row: Any = await (await conn.execute(sql, {**constants, **tile_params})).fetchone()  # type: ignore[arg-type]
            etag = tile_etag(key, definition, int(row[0]), int(row[1]))
            body = bytes(row[2] or b"")
            cache.put(etag, body, key=key)
        else:
            version_sql, version_params = compiled_tile_version(ids, MARGIN)
            version: Any = await (await conn.execute(
                version_sql, {**version_params, **tile_params})).fetchone()  # type: ignore[arg-type]
            etag = tile_etag(key, definition, int(version[0]), int(version[1]))
            cached = cache.get(etag)
            if cached is None:
                tile_sql, constants = compiled_tile(ids, z)
                tile_row: Any = await (await conn.execute(
                    tile_sql, {**constants, **tile_params})).fetchone()  # type: ignore[arg-type]
                cached = bytes(tile_row[0] or b"")
                cache.put(etag, cached, key=key)
            body = cached
    # Versions read from a replica are not watched: the feed listens on the primary, and a replica may not
    # have replayed a change yet when its notification arrives.
    cache.confirm(key, etag, body, layers=frozenset(ids), box_3857=tile_box_3857(z, x, y, margin=MARGIN),
                  epoch=epoch, watched=getattr(request.state, "read_source", PRIMARY) == PRIMARY)
    return etag_response(request, body, MVT, etag=etag)


@router.get("/{layer_id}/tilejson.json", summary="TileJSON 3.0 of a layer (or 'all' layers)", response_class=Response,
            responses={
                200: {"description": "TileJSON 3.0.0", "content": {"application/json": {"schema": {"type": "object"}}}},
                304: {"description": "Not modified: the document matching If-None-Match (ETag) is still current"}})
async def tilejson_document(request: Request, layer_id: LayerId, conn: ReadConnDep) -> Response:
    """TileJSON 3.0.0 with the tile URL template, zoom range, bounds and fields of each vector layer."""
    layers = _layers(layer_id)
    boxes = []
    for layer in layers:
        row = (await fetch_all_async(conn, extent_statement(layer)))[0]
        if row[0] is not None:
            boxes.append(tuple(float(v) for v in row))
    bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
              max(b[3] for b in boxes)) if boxes else None
    url = str(request.base_url).rstrip("/") + f"/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.mvt"
    doc = tilejson(layers, name=layer_id, tiles_url=url, bounds=bounds)
    return etag_response(request, dumps(doc), "application/json")
