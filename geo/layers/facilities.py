"""The facilities layer: every centre with its attributes, services and estimated free places by age.

Its properties are the centre's public fields that the layer carries (``geo.search.fields``, output ``layer``); a
later column (e.g. the time of the last vacancy report) is one more ``CentreField`` there (and, if it should show
on the map, a name in ``TILE_PROPERTIES``); nothing else changes.
"""

from __future__ import annotations

from sqlalchemy import Integer, cast
from sqlalchemy.sql.elements import ColumnElement

from geo.layers.base import Layer, Property
from geo.models.facilities import Facility
from geo.search.fields import CentreField, fields_for

_f = Facility.__table__.alias("f")
_c = _f.c


def _column(field: CentreField) -> ColumnElement:
    """The field as a column expression over the layer's alias ``f``: the column itself, so that CQL2 filters
    see it as stored (``services`` may be null here, where search results write ``[]``)."""
    if field.free_key is not None:
        return cast(_c.free_by_age[field.free_key].astext, Integer)
    column = field.source_column
    if column is None:
        raise ValueError(f"the facilities layer cannot carry the computed field {field.name}")
    return _c[column]


PROPERTIES: tuple[Property, ...] = tuple(
    Property(field.name, field.type, _column(field), field.description)  # type: ignore[arg-type]
    for field in fields_for("layer"))

TILE_PROPERTIES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("facility_type", "free_total")),
    (13, ("name", "facility_type", "status", "free_total", "services")),
    (15, ("name", "facility_type", "status", "capacity", "enrolled", "free_total",
          *(f"free_age_{age}" for age in range(6)), "services")),
)

LAYER = Layer(
    id="facilities",
    title="어린이집 (childcare centres)",
    description="Every childcare centre with type, status, services and estimated free places by age.",
    from_=_f,
    id_column=_c.id,
    geometry=_c.geom_4326,
    geometry_type="Point",
    properties=PROPERTIES,
    minzoom=8,
    maxzoom=18,
    tile_properties=TILE_PROPERTIES,
    temporal="data_date",
)
