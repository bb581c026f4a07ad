"""Data versions of tiles from ``layer_changes`` (filled by the triggers of migration 0004_layer_versions).

The version of a tile for some layers is (number of change rows, last sequence) over the rows of those layers
whose envelope meets the tile's buffered envelope. Any committed change to a feature in the tile adds a row
there, so the pair changes; changes elsewhere do not. The row count (not only the maximum) catches a
transaction that took a lower sequence number but committed later.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, Select, Text, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from geo.models import LayerChange

WEB_MERCATOR_HALF_M = 20037508.342789244


def tile_envelope(z: int, x: int, y: int, *, margin: float = 0.0):
    """``ST_TileEnvelope`` of z/x/y (EPSG:3857), grown by ``margin`` (a fraction of the tile width)."""
    bounds = func.ST_MakeEnvelope(-WEB_MERCATOR_HALF_M, -WEB_MERCATOR_HALF_M, WEB_MERCATOR_HALF_M,
                                  WEB_MERCATOR_HALF_M, 3857)
    return func.ST_TileEnvelope(literal(z, Integer), literal(x, Integer), literal(y, Integer), bounds,
                                literal(margin, Float))


def tile_version_statement(layer_ids: list[str], z: int, x: int, y: int, *, margin: float) -> Select:
    """``(count, max seq)`` of the changes of ``layer_ids`` meeting tile z/x/y grown by ``margin``."""
    table = LayerChange.__table__
    return select(func.count(), func.coalesce(func.max(table.c.seq), 0)).where(
        table.c.layer == func.any(literal(layer_ids, ARRAY(Text))),
        table.c.env_3857.op("&&")(tile_envelope(z, x, y, margin=margin)),
    )
