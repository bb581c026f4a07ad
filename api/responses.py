"""Response bodies built around JSON the database wrote: the page's features are passed through as bytes and
only the paging members (``numberMatched``, ``numberReturned``, ``links``, ``query``) are encoded here (orjson)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response

from api.params import Format
from geo.search import SearchPage
from geo.search.sql import Shape

GEOJSON_MEDIA_TYPE = "application/geo+json"
JSON_MEDIA_TYPE = "application/json"
MEDIA_TYPES: dict[str, str] = {"geojson": GEOJSON_MEDIA_TYPE, "json": JSON_MEDIA_TYPE,
                               "markers": JSON_MEDIA_TYPE}
SHAPES: dict[str, Shape] = {"geojson": "feature", "json": "item", "markers": "marker"}


def page_links(request: Request, page: SearchPage, fmt: Format) -> list[dict[str, Any]]:
    """``self``, ``alternate`` (other format), ``prev`` and ``next`` links; other parameters kept as given."""
    url = request.url
    # What ``url.include_query_params(name=value)`` gives (the parameter replaced, moved last), with the query
    # parsed once for every link instead of once per link (a search's links were 4 % of its time, py-spy).
    parts = url.components
    pairs = parse_qsl(parts.query, keep_blank_values=True)

    def with_param(name: str, value: object) -> str:
        query = urlencode([(k, v) for k, v in pairs if k != name] + [(name, str(value))])
        return parts._replace(query=query).geturl()

    links = [{"href": str(url), "rel": "self", "type": MEDIA_TYPES[fmt], "title": "this page"}]
    for other, media_type in MEDIA_TYPES.items():
        if other != fmt and other != "markers":  # a reduced view, not another format of the same page
            links.append({"href": with_param("f", other), "rel": "alternate",
                          "type": media_type, "title": f"this page as {other}"})
    if page.previous_offset is not None:
        links.append({"href": with_param("offset", page.previous_offset), "rel": "prev",
                      "type": MEDIA_TYPES[fmt], "title": "previous page"})
    if page.next_offset is not None:
        links.append({"href": with_param("offset", page.next_offset), "rel": "next",
                      "type": MEDIA_TYPES[fmt], "title": "next page"})
    return links


def page_response(request: Request, page: SearchPage, fmt: Format) -> Response:
    """A GeoJSON FeatureCollection (``f=geojson``) or a compact ``items`` list (``f=json``, ``f=markers``)."""
    members: dict[str, Any] = {"numberReturned": page.number_returned}
    if page.number_matched is not None:
        members["numberMatched"] = page.number_matched
    members |= {"links": page_links(request, page, fmt), "query": page.query}
    head = b'{"type":"FeatureCollection","features":' if fmt == "geojson" else b'{"items":'
    body = head + page.features_json.encode() + b"," + orjson.dumps(members)[1:]
    return Response(body, media_type=MEDIA_TYPES[fmt])
