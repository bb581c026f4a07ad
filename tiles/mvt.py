"""Mapbox vector tiles per registered layer and one combined tile (ST_TileEnvelope, ST_AsMVTGeom, ST_AsMVT).

Each layer contributes its lean property set for the zoom (``Layer.properties_at_zoom``) and only within its
zoom range. Geometries are selected with the buffered tile envelope on the EPSG:4326 index, then clipped and
quantised by ``ST_AsMVTGeom``; the combined tile is the concatenation of the per-layer tiles (valid MVT).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, LargeBinary, Select, Text, func, literal, select

from geo.errors import InvalidQuery, NotFound
from geo.layers.base import Layer
from geo.layers.registry import LAYERS
from geo.layers.versions import TileCoord, precompile, tile_binds, tile_envelope, tile_version_statement

EXTENT = 4096
BUFFER = 64
MARGIN = BUFFER / EXTENT


def check_tile(z: int, x: int, y: int) -> None:
    """Raise InvalidQuery unless z/x/y is a tile of the Web Mercator quad tree (z 0-24)."""
    if not 0 <= z <= 24:
        raise InvalidQuery(f"zoom {z} outside 0-24", param="z")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidQuery(f"tile {z}/{x}/{y} does not exist (x and y must be below {2**z})", param="x")


def layers_at_zoom(layers: list[Layer], z: int) -> list[Layer]:
    """The layers whose zoom range includes ``z``."""
    return [layer for layer in layers if layer.minzoom <= z <= layer.maxzoom]


def layer_tile_statement(layer: Layer, z: int, x: TileCoord, y: TileCoord, *,
                         z_sql: TileCoord | None = None) -> Select:
    """One layer's MVT (bytea; empty when no feature) with its lean properties for ``z``.

    ``x``/``y`` (and ``z_sql``, the zoom as used in SQL, default ``z``) may be bound parameters.
    """
    names = layer.properties_at_zoom(z)
    z_in_sql = z if z_sql is None else z_sql
    source = layer.source(names)
    envelope = tile_envelope(z_in_sql, x, y)
    search_4326 = func.ST_Transform(tile_envelope(z_in_sql, x, y, margin=MARGIN), 4326)
    integer_id = layer.id_column.type.python_type is int
    rows = (
        select(
            source.c.id,
            *(layer.flat_column(source, n) for n in names),  # arrays as JSON text: MVT has no arrays
            func.ST_AsMVTGeom(func.ST_Transform(source.c.geom_4326, 3857), envelope, literal(EXTENT, Integer),
                              literal(BUFFER, Integer), True).label("geom"),
        )
        .where(source.c.geom_4326.op("&&")(search_4326))
        .subquery("t")
    )
    args = [rows.table_valued(), literal(layer.id, Text), literal(EXTENT, Integer), literal("geom", Text)]
    if integer_id:
        args.append(literal("id", Text))
    return select(func.coalesce(func.ST_AsMVT(*args), literal(b"", LargeBinary))).select_from(rows).where(
        rows.c.geom.is_not(None))


def tile_statement(layers: list[Layer], z: int, x: TileCoord, y: TileCoord, *,
                   z_sql: TileCoord | None = None) -> Select:
    """The combined tile of ``layers`` at z/x/y (each layer in its zoom range), one bytea; NotFound if none."""
    active = layers_at_zoom(layers, z)
    if not active:
        raise NotFound(f"no layer has tiles at zoom {z}", layers=[layer.id for layer in layers])
    parts = [layer_tile_statement(layer, z, x, y, z_sql=z_sql).scalar_subquery() for layer in active]
    combined: ColumnElement = parts[0]
    for part in parts[1:]:
        combined = combined.op("||")(part)
    return select(combined.label("tile"))


@lru_cache(maxsize=256)
def compiled_tile(layer_ids: tuple[str, ...], z: int) -> tuple[str, dict[str, Any]]:
    """Precompiled ``tile_statement`` of registered ``layer_ids`` at zoom ``z``; x/y (and z) are parameters."""
    z_bind, x_bind, y_bind = tile_binds()
    return precompile(tile_statement([LAYERS[i] for i in layer_ids], z, x_bind, y_bind, z_sql=z_bind))


@lru_cache(maxsize=256)
def compiled_tile_and_version(layer_ids: tuple[str, ...], z: int) -> tuple[str, dict[str, Any]]:
    """Precompiled ``(changes, last_seq, tile)`` in one statement, for tiles not cached in any version (one round
    trip instead of two on a cold tile)."""
    z_bind, x_bind, y_bind = tile_binds()
    version = tile_version_statement(list(layer_ids), z_bind, x_bind, y_bind, margin=MARGIN).subquery("v")
    tile = tile_statement([LAYERS[i] for i in layer_ids], z, x_bind, y_bind, z_sql=z_bind).scalar_subquery()
    return precompile(select(version.c.changes, version.c.last_seq, tile.label("tile")))


def definition_hash(layers: list[Layer], z: int) -> str:
    """Short hash of what a tile at ``z`` is made of (layer ids, lean properties, extent): part of its ETag."""
    digest = hashlib.sha1(usedforsecurity=False)
    for layer in layers_at_zoom(layers, z):
        digest.update(f"{layer.id}:{','.join(layer.properties_at_zoom(z))};".encode())
    digest.update(f"{EXTENT}/{BUFFER}".encode())
    return digest.hexdigest()[:10]


