"""OGC API - Features (Parts 1 Core, 2 CRS, 3 Filtering; the drafts of Part 6 property selection and Part 8
sorting) over the layer registry, under ``/ogc``.

Handlers parse parameters, run the statements of ``geo.layers.features`` on a connection of the read pool (one
statement per read, ``geo.db.fetch_all_async``) and serialise;
JSON (GeoJSON for items) or HTML by ``f`` or the Accept header. Queryables are accepted as plain query parameters
(``?capacity=50``) on items and exports; ``POST /ogc/collections/{id}/search`` takes the same query as a JSON body
(for long CQL2 JSON filters), and ``POST .../items`` a CQL2 JSON filter as its body (OWSLib's ``cql=``).
Exports of a filtered layer at ``/ogc/collections/{id}/export?format=geojson|gpkg|csv|fgb``.
"""

from __future__ import annotations

import hashlib
import html
import shutil
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection
from starlette.background import BackgroundTask

from api.deps import EngineDep, ReadConnDep, SettingsDep
from api.errors import domain_problem, status_for, validation_problem
from api.openapi import keep_referenced_schemas, openapi_30
from api.routers.layer_common import CACHE_CONTROL, dumps, etag_response, not_modified
from api.schemas.ogc import SearchBody
from geo.db import fetch_all_async, fetch_precompiled_async
from geo.errors import DolbomError, InvalidQuery, NotFound
from geo.layers.base import Layer
from geo.layers.cql import parse_filter
from geo.layers.crs import CRS_URIS, DEFAULT, parse_bbox, parse_crs
from geo.layers.export import ENCODING_VERSION, FORMATS, export_layer
from geo.layers.features import (
    SORTABLE_TYPES,
    ItemsQuery,
    and_filters,
    count_page_query,
    extent_statement,
    feature_id_value,
    item_statement,
    items_page_query,
    parse_properties,
    parse_sortby,
    queryable_filter,
    selected,
    temporal_extent_statement,
)
from geo.layers.registry import LAYERS, get_layer
from geo.layers.versions import layer_version_statement
from geo.validation import MAX_OFFSET, reject_control_characters
from tiles import ogc as ogc_tiles

# Accepted everywhere though no operation declares them: ``format`` is the export's (items ignored it before).
_TOLERATED = frozenset({"format"})
# Operations that take a collection's queryables as plain query parameters (Part 3, queryables-query-parameters).
_QUERYABLE_PATHS = ("/items", "/export")


def queryable_names(layer: Layer) -> frozenset[str]:
    """The names a plain query parameter may have on items of ``layer``: ``id`` and its properties."""
    return frozenset({"id", *(p.name for p in layer.properties)})


def _query_names(dependant: Dependant) -> set[str]:
    """Wire names of the query parameters of an operation and of its dependencies."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class OgcRoute(APIRoute):
    """A route of the OGC API: a bad parameter is a 400 (OGC API - Features Part 1, 7.5/7.6: "invalid or unknown
    query parameter"), with the same RFC 9457 body the rest of the API sends with its 422; HEAD answers the
    headers of GET without the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # The query parameters this operation declares (by their wire names): any other is refused, except the
        # queryables of the collection on items and exports.
        declared = _query_names(self.dependant)
        takes_queryables = self.path.endswith(_QUERYABLE_PATHS)

        async def ogc_handler(request: Request) -> Response:
            try:
                allowed = declared | _TOLERATED
                if takes_queryables and (layer := LAYERS.get(request.path_params.get("collection_id", ""))):
                    allowed = allowed | queryable_names(layer)
                if unknown := sorted(set(request.query_params) - allowed):
                    raise InvalidQuery(f"unknown parameter(s) {', '.join(unknown)}", param=unknown[0])
                response = await handler(request)
            except RequestValidationError as exc:
                response = validation_problem(exc, instance=str(request.url.path), status=400)
            except DolbomError as exc:
                if status_for(exc) != 422:
                    raise
                response = domain_problem(exc, instance=str(request.url.path), status=400)
            if request.method == "HEAD":
                return Response(b"", status_code=response.status_code, headers=dict(response.headers),
                                media_type=None, background=response.background)
            return response

        return ogc_handler


router = APIRouter(prefix="/ogc", tags=["ogc-features"], route_class=OgcRoute)

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    # Drafts: Part 6 (properties=) and Part 8 (sortby=, /sortables).
    "http://www.opengis.net/spec/ogcapi-features-6/1.0/conf/property-selection",
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    *ogc_tiles.CONFORMANCE,  # OGC API - Tiles (api/routers/ogc_tiles.py)
]
_JSON_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
    "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"}, "array": {"type": "array", "items": {"type": "string"}},
}

# cql-text: the pre-standard name that GDAL's OAPIF driver sends; parsed as CQL2 text.
FilterLang = Literal["cql2-text", "cql2-json", "cql-text"]
FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text")
FormatParam = Annotated[str | None, Query(alias="f", pattern="^(json|html|geojson)$", max_length=10,
                                         description="json or html")]
# The registered ids as an enum: clients (and schemathesis) see the valid values; others are a 404 problem.
CollectionId = Annotated[str, Path(max_length=100, description="a layer id of the registry",
                                   json_schema_extra={"enum": list(LAYERS)})]
FeatureId = Annotated[str, Path(max_length=100, description="the feature's id")]
Text = Annotated[str | None, Query(max_length=200)]
FilterText = Annotated[str | None, Query(max_length=8000, description="CQL2 text or JSON filter")]
PropertiesParam = Annotated[str | None, Query(max_length=2000, description=(
    "comma-separated property names to return (the geometry and the id always come); unknown names are a 400"))]
SortbyParam = Annotated[str | None, Query(max_length=500, description=(
    "comma-separated sort keys, `+name` ascending (also without sign), `-name` descending; the id breaks ties"))]

# What each operation really answers, for OpenAPI (errors are added as problem+json by api.openapi).
_OBJECT: dict[str, Any] = {"schema": {"type": "object"}}
_HTML: dict[str, Any] = {"schema": {"type": "string"}}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the representation matching If-None-Match (ETag) is still current"}}
JSON_OR_HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON, or HTML with f=html or Accept: text/html",
          "content": {JSON: _OBJECT, "text/html": _HTML}}}
GEOJSON_OR_HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON, or HTML with f=html or Accept: text/html",
          "content": {GEOJSON: _OBJECT, "text/html": _HTML}},
    **NOT_MODIFIED}
QUERYABLES: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON schema of the queryable properties (HTML with f=html)",
          "content": {"application/schema+json": _OBJECT, JSON: _OBJECT, "text/html": _HTML}}}
EXPORTS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file (Content-Disposition: attachment)",
          "content": {spec.media_type: _OBJECT if spec.media_type == GEOJSON
                      else {"schema": {"type": "string", "format": "binary"}} for spec in FORMATS.values()}},
    **NOT_MODIFIED}


def _layer(collection_id: str) -> Layer:
    """The registered layer named by the path (a control character in it is a 422, not a 404)."""
    reject_control_characters(collection_id, param="collection_id")
    return get_layer(collection_id)


def _wants_html(request: Request, f: str | None) -> bool:
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _page(title: str, body: str) -> Response:
    doc = (f"<!doctype html><html lang='ko'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           # Our CSP (style-src 'self') blocks inline styles: the page's style is a file of ours.
           "<link rel='stylesheet' href='/static/ogc.css'></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Response(doc, media_type=HTML)


def _links_html(links: list[dict[str, Any]]) -> str:
    items = "".join(f"<li><a href='{html.escape(link['href'])}'>{html.escape(link.get('title') or link['rel'])}</a>"
                    f" ({html.escape(link['rel'])}, {html.escape(link.get('type', ''))})</li>" for link in links)
    return f"<ul>{items}</ul>"


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No features.</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _json(body: Any, media_type: str = JSON) -> Response:
    return Response(dumps(body), media_type=media_type)


@router.get("/", summary="OGC API landing page", response_class=Response, responses=JSON_OR_HTML,
            operation_id="ogc_landing_page")
@router.get("", summary="OGC API landing page", response_class=Response, responses=JSON_OR_HTML)
async def landing(request: Request, f: FormatParam = None) -> Response:
    """Landing page: links to the API definition, conformance and collections."""
    base = _base(request)
    links = [
        {"rel": "self", "href": base, "type": JSON, "title": "this document"},
        {"rel": "service-desc", "href": base + "/api", "type": OPENAPI, "title": "API definition (OpenAPI 3)"},
        {"rel": "service-doc", "href": str(request.base_url) + "docs", "type": "text/html", "title": "API docs"},
        {"rel": "conformance", "href": base + "/conformance", "type": JSON, "title": "conformance"},
        {"rel": "data", "href": base + "/collections", "type": JSON, "title": "collections"},
        *ogc_tiles.landing_links(base),
    ]
    body = {"title": "dolbom map layers", "description": "Childcare centres, 구 and 행정동 with supply statistics",
            "links": links}
    if _wants_html(request, f):
        return _page(body["title"], _links_html(links))  # type: ignore[arg-type]
    return _json(body)


@router.get("/api", summary="OpenAPI 3 definition of the OGC API (paths relative to /ogc)", response_class=Response,
            responses={200: {"description": "OpenAPI 3 document", "content": {OPENAPI: _OBJECT}}})
async def api_definition(request: Request) -> Response:
    """The app's OpenAPI document cut to the OGC paths, relative to ``/ogc`` as OGC clients expect."""
    full = request.app.openapi()
    paths: dict[str, Any] = {}
    for path, item in full.get("paths", {}).items():
        if not path.startswith("/ogc/"):
            continue
        item = orjson.loads(orjson.dumps(item).replace(b"collection_id", b"collectionId"))
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param.get("name") == "filter-lang":
                    param["schema"] = {"type": "string", "enum": list(FILTER_LANGS), "default": "cql2-text"}
        paths[path.removeprefix("/ogc").replace("collection_id", "collectionId")] = item
    doc = {"openapi": full.get("openapi"), "info": full.get("info", {}), "servers": [{"url": _base(request)}],
           "paths": paths, "components": full.get("components", {})}
    # OGC's oas30 conformance class: an OpenAPI 3.0 document (the app's own is 3.1).
    return Response(dumps(openapi_30(keep_referenced_schemas(doc))), media_type=OPENAPI)


@router.get("/conformance", summary="Conformance classes", response_class=Response, responses=JSON_OR_HTML)
async def conformance(request: Request, f: FormatParam = None) -> Response:
    """The conformance classes this API implements."""
    if _wants_html(request, f):
        return _page("Conformance", "<ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in CONFORMANCE) + "</ul>")
    return _json({"conformsTo": CONFORMANCE})


def _instant(value: date | datetime | None, *, end: bool) -> str | None:
    """RFC 3339 date-time (UTC) of a temporal extent's bound; a date covers its whole day (as ``datetime`` does)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max if end else time.min, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _collection(request: Request, conn: ReadConnDep, layer: Layer) -> dict[str, Any]:
    base = _base(request) + f"/collections/{layer.id}"
    bbox = (await fetch_all_async(conn, extent_statement(layer)))[0]
    extent: dict[str, Any] = {"spatial": {"bbox": [list(bbox) if bbox[0] is not None else [-180, -90, 180, 90]],
                                          "crs": DEFAULT.uri}}
    if layer.temporal:
        first, last = (await fetch_all_async(conn, temporal_extent_statement(layer)))[0]
        extent["temporal"] = {"interval": [[_instant(first, end=False), _instant(last, end=True)]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    root = str(request.base_url).rstrip("/")
    return {
        "id": layer.id,
        "title": layer.title,
        "description": layer.description,
        "itemType": "feature",
        "extent": extent,
        "crs": list(CRS_URIS),
        "storageCrs": DEFAULT.uri,
        "links": [
            {"rel": "self", "href": base, "type": JSON, "title": layer.title},
            {"rel": "alternate", "href": base + "?f=html", "type": "text/html", "title": f"{layer.title} as HTML"},
            {"rel": "items", "href": base + "/items", "type": GEOJSON, "title": "items"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "href": base + "/queryables",
             "type": "application/schema+json", "title": "queryables"},
            # The short rel is what GDAL's OAPIF driver (3.6) looks for.
            {"rel": "queryables", "href": base + "/queryables", "type": "application/schema+json",
             "title": "queryables"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables", "href": base + "/sortables",
             "type": "application/schema+json", "title": "sortables"},
            {"rel": "alternate", "href": f"{root}/tiles/{layer.id}/tilejson.json", "type": JSON,
             "title": "TileJSON of the vector tiles"},
            *ogc_tiles.collection_links(_base(request), layer.id),
            *({"rel": "enclosure", "href": f"{base}/export?format={name}", "type": spec.media_type,
               "title": f"export as {name}"} for name, spec in FORMATS.items()),
        ],
    }


@router.get("/collections", summary="Feature collections (one per registered layer)", response_class=Response,
            responses=JSON_OR_HTML)
async def collections(request: Request, conn: ReadConnDep, f: FormatParam = None) -> Response:
    """Every registered layer as a collection."""
    items = [await _collection(request, conn, layer) for layer in LAYERS.values()]
    links = [{"rel": "self", "href": _base(request) + "/collections", "type": JSON, "title": "collections"},
             _alternate(request, _base(request) + "/collections", JSON)]
    if _wants_html(request, f):
        return _page("Collections", _links_html([
            {"rel": "collection", "href": c["links"][0]["href"] + "?f=html", "title": c["title"], "type": "text/html"}
            for c in items]))
    return _json({"collections": items, "links": links, "crs": list(CRS_URIS)})


@router.get("/collections/{collection_id}", summary="One feature collection", response_class=Response,
            responses=JSON_OR_HTML)
async def collection(request: Request, collection_id: CollectionId, conn: ReadConnDep,
                     f: FormatParam = None) -> Response:
    """Metadata of one layer: extent, CRSs, links to items, queryables, tiles and exports."""
    body = await _collection(request, conn, _layer(collection_id))
    if _wants_html(request, f):
        return _page(body["title"], f"<p>{html.escape(body['description'])}</p>" + _links_html(body["links"]))
    return _json(body)


def _properties_schema(request: Request, layer: Layer, names: list[str], kind: str,
                       f: str | None) -> Response:
    """JSON schema (``queryables`` or ``sortables`` of ``layer``) of the properties ``names`` (with ``id`` and,
    for queryables, ``geometry``)."""
    props: dict[str, Any] = {}
    if kind == "queryables":
        geometry_format = {"Point": "geometry-point", "MultiPolygon": "geometry-multipolygon"}.get(
            layer.geometry_type, "geometry-any")
        props["geometry"] = {"format": geometry_format, "title": "geometry"}
    props["id"] = {"type": "integer" if layer.id_column.type.python_type is int else "string", "title": "id"}
    for prop in layer.properties:
        if prop.name in names:
            props[prop.name] = {**_JSON_SCHEMA_TYPES[prop.type], "title": prop.name,
                                "description": prop.description}
    body: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _base(request) + f"/collections/{layer.id}/{kind}",
        "type": "object",
        "title": layer.title,
        "properties": props,
        "additionalProperties": False,
    }
    if kind == "queryables":
        # Draft-era list that GDAL's OAPIF driver (3.6) reads to know which properties it may filter on.
        body["queryables"] = [{"id": name} for name in props]
    if _wants_html(request, f):
        return _page(f"{kind.capitalize()} of {layer.id}", _table_html(
            [{"name": k, **{kk: str(vv) for kk, vv in v.items()}} for k, v in props.items()]))
    accept = request.headers.get("accept", "")
    return _json(body, "application/schema+json" if "schema+json" in accept or not accept or "*/*" in accept
                 else JSON)


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties (JSON schema)",
            response_class=Response, responses=QUERYABLES)
async def queryables(request: Request, collection_id: CollectionId, f: FormatParam = None) -> Response:
    """The properties a CQL2 filter (or a plain query parameter) may use, with their JSON-schema types."""
    layer = _layer(collection_id)
    return _properties_schema(request, layer, [p.name for p in layer.properties], "queryables", f)


@router.get("/collections/{collection_id}/sortables", summary="Sortable properties (JSON schema)",
            response_class=Response, responses=QUERYABLES)
async def sortables(request: Request, collection_id: CollectionId, f: FormatParam = None) -> Response:
    """The properties ``sortby`` accepts (OGC API - Features Part 8 draft): all but arrays and the geometry."""
    layer = _layer(collection_id)
    return _properties_schema(request, layer, [p.name for p in layer.properties if p.type in SORTABLE_TYPES],
                              "sortables", f)


# The parameters of items and exports; any other name on them is a queryable (see ``OgcRoute``).
ITEMS_PARAMETERS = frozenset({"f", "limit", "offset", "bbox", "bbox-crs", "datetime", "filter", "filter-lang",
                              "filter-crs", "crs", "format", "properties", "sortby"})


def items_query(request: Request, layer: Layer, settings_max: int, *, limit: int, offset: int, bbox: str | None,
                bbox_crs: str | None, datetime_: str | None, filter_: str | None, filter_lang: str | None,
                filter_crs: str | None, crs: str | None, properties: str | None = None,
                sortby: str | None = None) -> ItemsQuery:
    """Parse the OGC items parameters into an ItemsQuery (limit clamped to the configured maximum); queryables
    given as plain parameters are ANDed to ``filter``."""
    for param, value in (("bbox", bbox), ("bbox-crs", bbox_crs), ("datetime", datetime_), ("filter-crs", filter_crs),
                         ("crs", crs), ("properties", properties), ("sortby", sortby)):
        reject_control_characters(value, param=param)
    reject_control_characters(filter_, param="filter", allow_whitespace=True)
    plain = [(k, v) for k, v in request.query_params.multi_items() if k not in ITEMS_PARAMETERS]
    for name, value in plain:
        reject_control_characters(value, param=name)
    served_bbox_crs = parse_crs(bbox_crs, param="bbox-crs")
    served_filter_crs = parse_crs(filter_crs, param="filter-crs")
    return ItemsQuery(
        bbox=parse_bbox(bbox, crs=served_bbox_crs) if bbox else None,
        bbox_crs=served_bbox_crs,
        datetime=datetime_,
        filter=and_filters(parse_filter(filter_, lang=filter_lang) if filter_ else None,
                           queryable_filter(layer, plain)),
        filter_crs=served_filter_crs,
        crs=parse_crs(crs),
        limit=min(limit, settings_max),
        offset=offset,
        properties=parse_properties(layer, properties) if properties is not None else None,
        sortby=parse_sortby(layer, sortby) if sortby else (),
    )


def _feature(row: tuple[Any, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """The GeoJSON feature of a row ``(id, *names, geometry[, ...])`` of ``items_statement``/``item_statement``."""
    geometry = row[len(names) + 1]
    return {
        "type": "Feature",
        "id": row[0],
        "geometry": orjson.Fragment(geometry) if geometry is not None else None,
        "properties": dict(zip(names, row[1:len(names) + 1], strict=True)),
    }


def _with_offset(request: Request, offset: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    params.append(("offset", str(offset)))
    return str(request.url.replace(query=urlencode(params)))


def _alternate(request: Request, href: str, media_type: str) -> dict[str, Any]:
    """The ``alternate`` link of ``href`` in HTML (``f=html``), with the request's other parameters kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    params.append(("f", "html"))
    return {"rel": "alternate", "href": f"{href}?{urlencode(params)}", "type": "text/html",
            "title": f"this document as HTML (the default is {media_type})"}


async def _page_of(conn: ReadConnDep, layer: Layer, query: ItemsQuery) -> tuple[list[dict[str, Any]], int]:
    """The features of one page of ``query`` and the number matched: one statement (the count is a window over
    the page's rows), two for a page past the last match (then the count alone)."""
    rows = await fetch_precompiled_async(conn, *items_page_query(layer, query))
    if rows:
        matched = int(rows[0][-1])
    else:
        matched = int((await fetch_precompiled_async(conn, *count_page_query(layer, query)))[0][0])
    names = selected(layer, query)
    return [_feature(row, names) for row in rows], matched


@router.get("/collections/{collection_id}/items", summary="Features of a collection", response_class=Response,
            responses=GEOJSON_OR_HTML)
async def items(
    request: Request,
    collection_id: CollectionId,
    conn: ReadConnDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100_000, description="page size (clamped to the configured maximum)")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    bbox: Annotated[str | None, Query(max_length=200,
                                      description="minx,miny,maxx,maxy in bbox-crs axis order")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    datetime: Annotated[str | None, Query(max_length=100,
                                          description="RFC 3339 instant or interval (a/b, ../b, a/..)")] = None,
    filter: FilterText = None,
    filter_lang: Annotated[FilterLang | None, Query(alias="filter-lang")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
    crs: Annotated[str | None, Query(max_length=200, description="output CRS URI")] = None,
    properties: PropertiesParam = None,
    sortby: SortbyParam = None,
    f: FormatParam = None,
) -> Response:
    """Features with bbox, datetime, CQL2 filter, queryables as parameters (``?capacity=50``), property selection,
    sorting and output CRS; paged with limit/offset and next/prev links."""
    layer = _layer(collection_id)
    query = items_query(request, layer, settings.search.max_page_limit, limit=limit, offset=offset, bbox=bbox,
                        bbox_crs=bbox_crs, datetime_=datetime, filter_=filter, filter_lang=filter_lang,
                        filter_crs=filter_crs, crs=crs, properties=properties, sortby=sortby)
    return await _items_answer(request, conn, layer, query, f)


async def _items_answer(request: Request, conn: ReadConnDep, layer: Layer, query: ItemsQuery, f: str | None,
                        posted: dict[str, Any] | None = None) -> Response:
    """The page of ``query`` as GeoJSON (or HTML) with self/alternate/collection/next/prev links; for a POST, the
    links to pages carry its ``posted`` body to send again."""
    offset = query.offset
    features, matched = await _page_of(conn, layer, query)
    page = query.limit or len(features)
    again = {} if posted is None else {"method": "POST", "body": posted}
    links = [{"rel": "self", "href": str(request.url), "type": GEOJSON, "title": "this page", **again},
             {"rel": "collection", "href": _base(request) + f"/collections/{layer.id}", "type": JSON}]
    if posted is None:
        links.insert(1, _alternate(request, _base(request) + f"/collections/{layer.id}/items", GEOJSON))
    if offset + page < matched:
        links.append({"rel": "next", "href": _with_offset(request, offset + page), "type": GEOJSON, "title": "next",
                      **again})
    if offset > 0:
        links.append({"rel": "prev", "href": _with_offset(request, max(0, offset - page)), "type": GEOJSON,
                      "title": "previous", **again})
    headers = {"Content-Crs": f"<{query.crs.uri}>"}
    if _wants_html(request, f):
        table = [{"id": feat["id"], **feat["properties"]} for feat in features]
        return _page(f"{layer.title}: {matched} features",
                     _links_html(links) + _table_html(table))  # type: ignore[arg-type]
    body = {"type": "FeatureCollection", "features": features, "numberMatched": matched,
            "numberReturned": len(features), "links": links}
    return etag_response(request, dumps(body), GEOJSON, headers=headers)


@router.post("/collections/{collection_id}/items", summary="Features of a collection, CQL2 JSON filter in the body",
             response_class=Response, responses={200: GEOJSON_OR_HTML[200]})
async def items_by_post(
    request: Request,
    collection_id: CollectionId,
    conn: ReadConnDep,
    settings: SettingsDep,
    cql2: Annotated[dict[str, Any], Body(description="CQL2 JSON filter, ANDed with a filter parameter")],
    limit: Annotated[int, Query(ge=1, le=100_000, description="page size (clamped to the configured maximum)")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    datetime: Annotated[str | None, Query(max_length=100)] = None,
    filter: FilterText = None,
    filter_lang: Annotated[FilterLang | None, Query(alias="filter-lang")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
    crs: Annotated[str | None, Query(max_length=200, description="output CRS URI")] = None,
    properties: PropertiesParam = None,
    sortby: SortbyParam = None,
) -> Response:
    """GET items with a CQL2 JSON filter sent as the body (what OWSLib's ``collection_items(cql=...)`` and
    pygeoapi do); the other parameters, queryables included, stay in the query string. Reads only."""
    layer = _layer(collection_id)
    query = items_query(request, layer, settings.search.max_page_limit, limit=limit, offset=offset, bbox=bbox,
                        bbox_crs=bbox_crs, datetime_=datetime, filter_=filter, filter_lang=filter_lang,
                        filter_crs=filter_crs, crs=crs, properties=properties, sortby=sortby)
    body_filter = parse_filter(orjson.dumps(cql2).decode(), lang="cql2-json")
    query = ItemsQuery(**{**query.__dict__, "filter": and_filters(query.filter, body_filter)})
    return await _items_answer(request, conn, layer, query, None, posted=cql2)


SEARCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "GeoJSON FeatureCollection, as GET items answers; the next/prev links carry the body to "
                         "POST again (method and body members, as STAC API does)",
          "content": {GEOJSON: _OBJECT}}}


@router.post("/collections/{collection_id}/search", summary="Features of a collection by a JSON query (CQL2 JSON)",
             response_class=Response, responses=SEARCH_RESPONSES)
async def search(request: Request, collection_id: CollectionId, conn: ReadConnDep, settings: SettingsDep,
                 body: Annotated[SearchBody, Body()]) -> Response:
    """The items of a collection for a query sent as JSON (a long CQL2 JSON ``filter``, ``bbox``, ``datetime``,
    ``sortby``, ``properties``, ``limit``/``offset``, ``crs``): the same FeatureCollection as GET items. Reads
    only: public, no session or CSRF token."""
    layer = _layer(collection_id)
    filter_lang = body.filter_lang or ("cql2-text" if isinstance(body.filter, str) else "cql2-json")
    filter_text = None
    if body.filter is not None:
        filter_text = body.filter if isinstance(body.filter, str) else orjson.dumps(body.filter).decode()
    served_bbox_crs = parse_crs(body.bbox_crs, param="bbox-crs")
    query = ItemsQuery(
        bbox=parse_bbox(",".join(repr(v) for v in body.bbox), crs=served_bbox_crs) if body.bbox else None,
        bbox_crs=served_bbox_crs,
        datetime=body.datetime,
        filter=parse_filter(filter_text, lang=filter_lang) if filter_text is not None else None,
        filter_crs=parse_crs(body.filter_crs, param="filter-crs"),
        crs=parse_crs(body.crs),
        limit=min(body.limit, settings.search.max_page_limit),
        offset=body.offset,
        properties=parse_properties(layer, ",".join(body.properties)) if body.properties is not None else None,
        sortby=parse_sortby(layer, body.sortby if isinstance(body.sortby, str) else ",".join(body.sortby))
        if body.sortby else (),
    )
    features, matched = await _page_of(conn, layer, query)
    page = query.limit or len(features)
    href = _base(request) + f"/collections/{layer.id}/search"
    sent = body.model_dump(by_alias=True, exclude_none=True)
    links: list[dict[str, Any]] = [
        {"rel": "self", "href": href, "type": GEOJSON, "method": "POST", "body": sent},
        {"rel": "collection", "href": _base(request) + f"/collections/{layer.id}", "type": JSON}]
    if query.offset + page < matched:
        links.append({"rel": "next", "href": href, "type": GEOJSON, "method": "POST",
                      "body": {**sent, "offset": query.offset + page}, "title": "next"})
    if query.offset > 0:
        links.append({"rel": "prev", "href": href, "type": GEOJSON, "method": "POST",
                      "body": {**sent, "offset": max(0, query.offset - page)}, "title": "previous"})
    answer = {"type": "FeatureCollection", "features": features, "numberMatched": matched,
              "numberReturned": len(features), "links": links}
    return Response(dumps(answer), media_type=GEOJSON, headers={"Content-Crs": f"<{query.crs.uri}>"})


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature", response_class=Response,
            responses=GEOJSON_OR_HTML)
async def item(request: Request, collection_id: CollectionId, feature_id: FeatureId, conn: ReadConnDep,
               crs: Annotated[str | None, Query(max_length=200, description="output CRS URI")] = None,
               f: FormatParam = None) -> Response:
    """One feature by id, in the requested CRS."""
    layer = _layer(collection_id)
    reject_control_characters(feature_id, param="feature_id")
    reject_control_characters(crs, param="crs")
    served = parse_crs(crs)
    typed = feature_id_value(layer, feature_id)
    row = None
    if typed is not None:
        rows = await fetch_all_async(conn, item_statement(layer, typed, crs=served))
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"{layer.id} has no feature {feature_id!r}")
    feature = _feature(row, tuple(p.name for p in layer.properties))
    feature["links"] = [
        {"rel": "self", "href": str(request.url), "type": GEOJSON},
        _alternate(request, _base(request) + f"/collections/{layer.id}/items/{quote(feature_id, safe='')}",
                   GEOJSON),
        {"rel": "collection", "href": _base(request) + f"/collections/{layer.id}", "type": JSON},
    ]
    if _wants_html(request, f):
        return _page(f"{layer.id} {feature_id}", _table_html([{"id": row[0], **feature["properties"]}]))
    return etag_response(request, dumps(feature), GEOJSON, headers={"Content-Crs": f"<{served.uri}>"})


@router.get("/collections/{collection_id}/export", summary="Download a (filtered) layer as a file",
            response_class=FileResponse, responses=EXPORTS)
def export(
    request: Request,
    collection_id: CollectionId,
    engine: EngineDep,
    format: Annotated[str, Query(pattern="^(geojson|gpkg|csv|fgb)$", max_length=10)] = "gpkg",
    bbox: Text = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    datetime: Annotated[str | None, Query(max_length=100)] = None,
    filter: FilterText = None,
    filter_lang: Annotated[FilterLang | None, Query(alias="filter-lang")] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
    crs: Text = None,
    properties: PropertiesParam = None,
    sortby: SortbyParam = None,
) -> Response:
    """GeoJSON, GeoPackage, CSV (WKT geometry) or FlatGeobuf of every feature matching the filter (and the
    queryables given as parameters), with the selected properties in ``sortby`` order."""
    layer = _layer(collection_id)
    query = items_query(request, layer, 1, limit=1, offset=0, bbox=bbox, bbox_crs=bbox_crs, datetime_=datetime,
                        filter_=filter, filter_lang=filter_lang, filter_crs=filter_crs, crs=crs,
                        properties=properties, sortby=sortby)
    query = ItemsQuery(**{**query.__dict__, "limit": None})
    spec = FORMATS[format]
    with engine.connect() as conn:
        etag = _export_etag(conn, request, layer, format) if layer.versioned else None
        if etag is not None and (unchanged := not_modified(request, etag)) is not None:
            return unchanged
        path = export_layer(conn, layer, query, format)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL} if etag is not None else None
    return FileResponse(path, media_type=spec.media_type, filename=path.name, headers=headers,
                        background=BackgroundTask(shutil.rmtree, path.parent, ignore_errors=True))


def _export_etag(conn: Connection, request: Request, layer: Layer, format: str) -> str:
    """ETag of an export: the layer's data version (``layer_changes``), its definition, the encoding version and
    the request's query.

    Weak: the same data exported twice is the same content, though a GeoPackage's bytes carry its creation time.
    """
    changes, last_seq = conn.execute(layer_version_statement([layer.id])).one()
    definition = [layer.id, format, ENCODING_VERSION, [(p.name, p.type) for p in layer.properties],
                  sorted(request.query_params.multi_items()), int(changes), int(last_seq)]
    return 'W/"' + hashlib.sha1(orjson.dumps(definition), usedforsecurity=False).hexdigest()[:24] + '"'





# HEAD on every read of the API (the same headers as GET, no body; ``OgcRoute`` drops it), kept out of the OpenAPI
# documents. Not on exports: a HEAD would build the file.
for _route in list(router.routes):
    if isinstance(_route, APIRoute) and "GET" in (_route.methods or ()) and not _route.path.endswith("/export"):
        router.add_api_route(_route.path.removeprefix("/ogc"), _route.endpoint, methods=["HEAD"],
                             include_in_schema=False, name=f"{_route.name}_head", response_class=Response)
