"""Static maps of a facility search to share (folium): ``dolbom map --out FILE.html``.

One HTML file with every centre the search finds, coloured by free places (for the chosen age, else in total),
the search area (radius circle or the 구/행정동 outline) and the data attribution. The file is self-contained
(Leaflet and its styles inlined by ``geo.search.offline_maps``): it renders offline, with the OpenStreetMap
background tiles when online.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
from psycopg import sql
from sqlalchemy import Connection

from geo.db import driver_connection
from geo.domain import FACILITY_TYPE_KO, FacilityType
from geo.errors import InvalidQuery
from geo.search import FacilityFilters, area_statement, radius_statement, run
from geo.search.offline_maps import save_self_contained
from geo.search.places import resolve_area
from geo.settings import Settings

ATTRIBUTION = "어린이집: 서울 열린데이터광장 OA-20300 (공공누리 제1유형) · 경계: NGII/MOLIT, KOSTAT"
COLOURS = {"free": "#1a7f37", "full": "#cf222e", "unknown": "#8c959f"}


@dataclass
class SearchMap:
    """A folium map of one search and the centres on it (GeoJSON Features as the search returned them)."""

    map: folium.Map
    features: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write the self-contained HTML file whole or not at all (a temporary file renamed over ``path``)."""
        save_self_contained(self.map, path)


def _free_for(properties: dict[str, Any], age: int | None) -> int | None:
    free = properties.get("free_by_age") or {}
    value = free.get(str(age)) if age is not None else free.get("total")
    return None if value is None else int(value)


def _popup(properties: dict[str, Any], free: int | None) -> str:
    label = FACILITY_TYPE_KO.get(FacilityType(properties["facility_type"]), properties["facility_type"])
    services = ", ".join(properties.get("services_ko") or [])
    distance = properties.get("distance_m")
    parts = [f"<strong>{html.escape(properties['name'])}</strong>", html.escape(label),
             f"여석 {'-' if free is None else free} · 정원 {properties.get('capacity') or '-'} · "
             f"현원 {properties.get('enrolled') or '-'}",
             html.escape(properties.get("address") or ""), html.escape(services)]
    if distance is not None:
        parts.append(f"{round(distance)} m")
    return "<br>".join(p for p in parts if p)


def search_map(conn: Connection, *, settings: Settings, filters: FacilityFilters | None = None,
               lat: float | None = None, lon: float | None = None, radius_m: float | None = None,
               district: str | None = None, dong: str | None = None, limit: int | None = None) -> SearchMap:
    """Run a radius search (``lat``, ``lon``, ``radius_m``: EPSG:4326 degrees and metres) or an area search
    (``district`` and/or ``dong``: code or name) with ``filters`` and draw every match (at most ``limit``).

    Raises
    ------
    InvalidQuery
        Neither or both of a point with a radius and an area are given, or a search parameter is invalid.
    NotFound
        The 구/행정동 does not exist.
    """
    by_point = lat is not None or lon is not None or radius_m is not None
    by_area = district is not None or dong is not None
    if by_point == by_area:
        raise InvalidQuery("give either --lat, --lon and --radius-m, or --district/--dong", param="area")
    if by_point and (lat is None or lon is None or radius_m is None):
        raise InvalidQuery("a radius search needs --lat, --lon and --radius-m together", param="radius_m")
    if limit is not None and limit < 1:
        raise InvalidQuery(f"limit must be at least 1 (got {limit})", param="limit")
    page_size = settings.search.max_page_limit
    area = resolve_area(conn, district=district, dong=dong) if by_area else None
    features: list[dict[str, Any]] = []
    offset = 0
    while limit is None or len(features) < limit:
        size = page_size if limit is None else min(page_size, limit - len(features))
        if area is not None:
            statement = area_statement(area, settings=settings, filters=filters, limit=size, offset=offset)
        else:
            assert lat is not None and lon is not None and radius_m is not None
            statement = radius_statement(lat=lat, lon=lon, radius_m=radius_m, settings=settings, filters=filters,
                                         limit=size, offset=offset)
        page = run(conn, statement)
        features.extend(page.features)
        if not page.has_more:
            break
        offset += page.number_returned

    age = filters.age if filters is not None else None
    if area is not None:
        table = "districts" if area.kind == "district" else "admin_dongs"
        key = "code" if area.kind == "district" else "id"
        outline_sql = sql.SQL("SELECT ST_AsGeoJSON(geom_4326, 6) FROM {table} WHERE {key}::text = %(key)s").format(
            table=sql.Identifier(table), key=sql.Identifier(key))
        with driver_connection(conn).cursor() as cur:
            found = cur.execute(outline_sql, {"key": area.key}).fetchone()
        assert found is not None
        outline = found[0]
        shape: folium.GeoJson | folium.Circle = folium.GeoJson(
            outline, name=area.name, style_function=lambda _: {"color": "#0969da", "weight": 2, "fillOpacity": 0.03})
        title = area.name if area.kind == "district" else f"{area.district_name} {area.name}"
    else:
        assert lat is not None and lon is not None and radius_m is not None
        shape = folium.Circle([lat, lon], radius=radius_m, color="#0969da", weight=2, fill=False)
        title = f"{lat:.5f}, {lon:.5f} · {radius_m:g} m"

    start = [lat, lon] if lat is not None and lon is not None else [37.5665, 126.978]
    fmap = folium.Map(location=start, zoom_start=14,
                      tiles="OpenStreetMap", control_scale=True)
    shape.add_to(fmap)
    bounds: list[list[float]] = []
    for feature in features:
        lon_f, lat_f = feature["geometry"]["coordinates"]
        properties = feature["properties"]
        free = _free_for(properties, age)
        tone = "unknown" if free is None else "free" if free > 0 else "full"
        folium.CircleMarker([lat_f, lon_f], radius=7, weight=1, color="#333", fill=True,
                            fill_color=COLOURS[tone], fill_opacity=0.9, tooltip=properties["name"],
                            popup=folium.Popup(_popup(properties, free), max_width=320)).add_to(fmap)
        bounds.append([lat_f, lon_f])
    if bounds:
        fmap.fit_bounds([[min(b[0] for b in bounds), min(b[1] for b in bounds)],
                         [max(b[0] for b in bounds), max(b[1] for b in bounds)]])
    legend = (f'<div style="position:fixed;bottom:24px;left:12px;z-index:999;background:#fff;padding:6px 10px;'
              f'border:1px solid #999;font:13px sans-serif">'
              f'<strong>{html.escape(title)}</strong> · 어린이집 {len(features)}곳<br>'
              f'<span style="color:{COLOURS["free"]}">●</span> 여석 있음 '
              f'<span style="color:{COLOURS["full"]}">●</span> 여석 없음 '
              f'<span style="color:{COLOURS["unknown"]}">●</span> 정보 없음<br><small>{html.escape(ATTRIBUTION)}'
              f'</small></div>')
    fmap.get_root().html.add_child(folium.Element(legend))  # type: ignore[attr-defined]
    return SearchMap(map=fmap, features=features)
