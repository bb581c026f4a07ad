"""Data versions of tiles from ``layer_changes`` (filled by the triggers of migration 0004_layer_versions).

The version of a tile for some layers is (number of change rows, last sequence) over the rows of those layers
whose envelope meets the tile's buffered envelope. Any committed change to a feature in the tile adds a row
there, so the pair changes; changes elsewhere do not. The row count (not only the maximum) catches a
transaction that took a lower sequence number but committed later.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Select, Text, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from geo.models.facilities import LayerChange

WEB_MERCATOR_HALF_M = 20037508.342789244
PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
TILE_PARAMS = ("tile_z", "tile_x", "tile_y")

TileCoord = int | ColumnElement


def tile_binds() -> tuple[ColumnElement, ColumnElement, ColumnElement]:
    """Bound parameters ``tile_z``, ``tile_x``, ``tile_y`` (integers) for precompiled tile statements."""
    z, x, y = (bindparam(name, value=0, type_=Integer) for name in TILE_PARAMS)  # values given at execution
    return z, x, y


def tile_envelope(z: TileCoord, x: TileCoord, y: TileCoord, *, margin: float = 0.0) -> ColumnElement:
    """``ST_TileEnvelope`` of z/x/y (EPSG:3857; ints or bound parameters), grown by ``margin`` (tile fraction)."""
    bounds = func.ST_MakeEnvelope(-WEB_MERCATOR_HALF_M, -WEB_MERCATOR_HALF_M, WEB_MERCATOR_HALF_M,
                                  WEB_MERCATOR_HALF_M, 3857)
    args = [v if isinstance(v, ColumnElement) else literal(v, Integer) for v in (z, x, y)]
    return func.ST_TileEnvelope(*args, bounds, literal(margin, Float))  # type: ignore[no-any-return]


def tile_version_statement(layer_ids: list[str], z: TileCoord, x: TileCoord, y: TileCoord, *,
                           margin: float) -> Select:
    """``(count, max seq)`` of the changes of ``layer_ids`` meeting tile z/x/y grown by ``margin``."""
    table = LayerChange.__table__
    return select(func.count().label("changes"), func.coalesce(func.max(table.c.seq), 0).label("last_seq")).where(
        table.c.layer == func.any(literal(layer_ids, ARRAY(Text))),
        table.c.env_3857.op("&&")(tile_envelope(z, x, y, margin=margin)),
    )


def layer_version_statement(layer_ids: list[str]) -> Select:
    """``(count, max seq)`` of every change of ``layer_ids``: the data version of a whole layer (exports)."""
    table = LayerChange.__table__
    return select(func.count().label("changes"), func.coalesce(func.max(table.c.seq), 0).label("last_seq")).where(
        table.c.layer == func.any(literal(layer_ids, ARRAY(Text))))


def precompile(stmt: Select) -> tuple[str, dict[str, Any]]:
    """SQL text (psycopg paramstyle) and constant parameters of ``stmt``, compiled once for reuse.

    Building and compiling a SQLAlchemy statement costs milliseconds of Python; tiles are served from text
    compiled once per (layers, zoom), with z/x/y passed as bound parameters at execution.
    """
    compiled = stmt.compile(dialect=PSYCOPG, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


@lru_cache(maxsize=64)
def compiled_tile_version(layer_ids: tuple[str, ...], margin: float) -> tuple[str, dict[str, Any]]:
    """Precompiled ``tile_version_statement`` for ``layer_ids`` with z/x/y as parameters."""
    z, x, y = tile_binds()
    return precompile(tile_version_statement(list(layer_ids), z, x, y, margin=margin))
