"""Facility search on PostGIS: radius, k-nearest, administrative area, catchment and inside a geometry.

Layers: ``geo.validation`` (points, distances, pages, text), ``filters`` (attribute filters -> bound SQL),
``sql`` (the statements, composed with ``psycopg.sql``; the database writes results as GeoJSON), ``queries``
(validated statements and their sync/async runners) and ``results`` (``FacilityHit``, ``SearchPage``).

Distances are metres on the WGS84 spheroid (``geography``); coordinates are EPSG:4326 (lon, lat).
"""

from geo.search.filters import FacilityFilters, parse_requested_services, parse_statuses, parse_types
from geo.search.queries import (
    AreaLookupStatement,
    CountMode,
    SearchStatement,
    area_lookup_statement,
    area_search,
    area_statement,
    catchment_radii_m,
    catchment_search,
    catchment_statement,
    nearest_search,
    nearest_statement,
    radius_search,
    radius_statement,
    run,
    run_area,
    run_area_async,
    run_async,
    within_geometry_search,
    within_geometry_statement,
)
from geo.search.results import FacilityHit, SearchPage

__all__ = [
    "AreaLookupStatement", "CountMode", "FacilityFilters", "FacilityHit", "SearchPage", "SearchStatement",
    "area_lookup_statement", "area_search", "area_statement", "catchment_radii_m", "catchment_search",
    "catchment_statement", "nearest_search", "nearest_statement", "parse_requested_services", "parse_statuses",
    "parse_types", "radius_search", "radius_statement", "run", "run_area", "run_area_async", "run_async",
    "within_geometry_search", "within_geometry_statement",
]
