"""The layer registry: the only place that names tables for outside use (features, tiles, exports).

Blind spots (planner cells of ``geo.analysis``) are one ``Layer``; walking catchments join the same way once their
table exists; add the table's trigger to ``layer_changes`` in the same migration so its tiles version.
"""

from __future__ import annotations

from geo.errors import NotFound
from geo.layers.areas import ADMIN_DONGS, DISTRICTS
from geo.layers.base import Layer
from geo.layers.blind_spots import LAYER as BLIND_SPOTS
from geo.layers.disclosures import LAYER as DISCLOSURES
from geo.layers.facilities import LAYER as FACILITIES

LAYERS: dict[str, Layer] = {layer.id: layer for layer in (FACILITIES, DISTRICTS, ADMIN_DONGS, BLIND_SPOTS,
                                                                   DISCLOSURES)}


def get_layer(layer_id: str) -> Layer:
    """The registered layer ``layer_id``; NotFound otherwise."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise NotFound(f"no layer {layer_id!r}", layers=sorted(LAYERS)) from None
