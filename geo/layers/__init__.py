"""Map layers for GIS clients: one registry (``geo.layers.registry``) names every table served to the outside.

- ``base``: the ``Layer`` and ``Property`` definitions;
- ``facilities`` / ``areas``: the layers themselves (centres; 구 and 행정동 with supply statistics);
- ``registry``: ``LAYERS``, ``get_layer``;
- ``crs``: the CRSs served (OGC API - Features Part 2) and their axis order;
- ``cql2``: CQL2 text/JSON filters (pygeofilter) translated to bound SQLAlchemy expressions;
- ``features``: item queries (bbox, datetime, filter, CRS, paging) shared by the API and the exports;
- ``versions``: data versions of tiles and layers from ``layer_changes`` (written by database triggers);
- ``export``: GeoJSON, GeoPackage, CSV and FlatGeobuf files of a filtered layer (pyogrio).
"""
