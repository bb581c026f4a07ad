"""TileJSON 3.0.0 documents for one layer or the combined tile."""

from __future__ import annotations

from typing import Any

from geo.layers.base import Layer

_FIELD_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean",
                "date": "String", "date-time": "String", "array": "String"}


def tilejson(layers: list[Layer], *, name: str, tiles_url: str,
             bounds: tuple[float, float, float, float] | None) -> dict[str, Any]:
    """TileJSON for ``layers`` served at ``tiles_url`` (with ``{z}/{x}/{y}``); bounds in EPSG:4326 degrees."""
    minzoom = min(layer.minzoom for layer in layers)
    maxzoom = max(layer.maxzoom for layer in layers)
    west, south, east, north = bounds or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    vector_layers = []
    for layer in layers:
        widest = layer.properties_at_zoom(layer.maxzoom)
        fields = {"id": "Number" if layer.id_column.type.python_type is int else "String"}
        for prop in layer.properties:
            if prop.name in widest:
                fields[prop.name] = _FIELD_TYPES[prop.type]
        vector_layers.append({"id": layer.id, "description": layer.description, "minzoom": layer.minzoom,
                              "maxzoom": layer.maxzoom, "fields": fields})
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": "; ".join(layer.title for layer in layers),
        "scheme": "xyz",
        "format": "pbf",
        "tiles": [tiles_url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, max(minzoom, min(12, maxzoom))],
        "vector_layers": vector_layers,
        "attribution": "서울 열린데이터광장 OA-20300 (KOGL Type 1); boundaries NGII/MOLIT, KOSTAT",
    }
