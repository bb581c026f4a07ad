"""Layer and property definitions: what a layer is made of, independent of how it is served."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, FromClause, Select, Subquery, Text, cast, func, select

PropertyType = Literal["string", "integer", "number", "boolean", "date", "date-time", "array"]


@dataclass(frozen=True)
class Property:
    """One attribute of a layer.

    Parameters
    ----------
    name
        Name on the wire (GeoJSON property, MVT attribute, queryable, export column).
    type
        JSON-schema type; ``array`` is an array of strings.
    column
        SQL expression over the layer's ``from_`` clause that computes it.
    description
        One sentence for queryables and TileJSON; units in the name or here.
    """

    name: str
    type: PropertyType
    column: ColumnElement
    description: str = ""


@dataclass(frozen=True)
class Layer:
    """A map layer served as OGC API - Features collection, vector tiles and exports.

    ``minzoom``/``maxzoom`` bound the tiles; ``tile_properties`` gives the lean property set used from a zoom on
    (``((0, ("id",)), (14, ("id", "name")))`` = id only below z14). ``temporal`` names a date/date-time property
    that the OGC ``datetime`` parameter filters on. ``geometry`` is an EPSG:4326 expression over ``from_``.
    """

    id: str
    title: str
    description: str
    from_: FromClause
    id_column: ColumnElement
    geometry: ColumnElement
    geometry_type: str
    properties: tuple[Property, ...]
    minzoom: int
    maxzoom: int
    tile_properties: tuple[tuple[int, tuple[str, ...]], ...]
    temporal: str | None = None
    # Whether the layer's rows are recorded in layer_changes (by trigger) under this id.
    versioned: bool = True
    _by_name: dict[str, Property] = field(default_factory=dict, compare=False, repr=False)
    _sources: dict[tuple[str, ...] | None, Subquery] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [p.name for p in self.properties]
        if len(set(names)) != len(names) or "id" in names:
            raise ValueError(f"layer {self.id}: property names must be unique and not 'id'")
        self._by_name.update({p.name: p for p in self.properties})
        for _, tile_names in self.tile_properties:
            unknown = set(tile_names) - set(names) - {"id"}
            if unknown:
                raise ValueError(f"layer {self.id}: unknown tile properties {sorted(unknown)}")
        if self.temporal is not None and self.temporal not in self._by_name:
            raise ValueError(f"layer {self.id}: temporal property {self.temporal} is not a property")

    def property(self, name: str) -> Property | None:
        """The property called ``name`` or None."""
        return self._by_name.get(name)

    def properties_at_zoom(self, z: int) -> tuple[str, ...]:
        """Names of the lean property set used in tiles at zoom ``z``."""
        chosen: tuple[str, ...] = ()
        for from_zoom, names in sorted(self.tile_properties):
            if z >= from_zoom:
                chosen = names
        return chosen

    def flat_column(self, source: Subquery, name: str) -> ColumnElement:
        """Column ``name`` of ``source`` as flat formats carry it (vector tiles): a string array as its compact
        JSON text (``["holiday","twenty_four_hour"]``, the text the exports write, ``geo.layers.export``)."""
        prop = self._by_name.get(name)
        if prop is not None and prop.type == "array":
            return cast(func.array_to_json(source.c[name]), Text).label(name)
        return source.c[name]

    def source(self, names: tuple[str, ...] | None = None) -> Subquery:
        """The layer as a subquery with columns ``id``, ``geom_4326`` and the properties ``names`` (all if None).

        Built once per property set: constructing it is a large share of a request's Python time.
        """
        cached = self._sources.get(names)
        if cached is not None:
            return cached
        props = self.properties if names is None else tuple(self._by_name[n] for n in names if n != "id")
        stmt: Select = select(
            self.id_column.label("id"),
            *(p.column.label(p.name) for p in props),
            self.geometry.label("geom_4326"),
        ).select_from(self.from_)
        self._sources[names] = stmt.subquery(self.id)
        return self._sources[names]
