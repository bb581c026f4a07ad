"""The layer registry: the only place that names tables for outside use (features, tiles, exports).

Blind spots (planner measures from ``geo.analysis``) and walking catchments join here as one ``Layer`` each once
their tables exist; add the table's trigger to ``layer_changes`` in the same migration so its tiles version.
"""

from __future__ import annotations

from geo.errors import NotFound
from geo.layers.areas import ADMIN_DONGS, DISTRICTS
from geo.layers.base import Layer
from geo.layers.facilities import LAYER as FACILITIES

LAYERS: dict[str, Layer] = {layer.id: layer for layer in (FACILITIES, DISTRICTS, ADMIN_DONGS)}


def get_layer(layer_id: str) -> Layer:
    """The registered layer ``layer_id``; NotFound otherwise."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise NotFound(f"no layer {layer_id!r}", layers=sorted(LAYERS)) from None
