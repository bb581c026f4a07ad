"""Planner outputs: GeoJSON, GeoPackage and CSV files, a district report (Markdown) and a folium choropleth."""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd

from geo.analysis.planner import PlannerResult
from geo.search.offline_maps import save_self_contained

# Columns written for each level (geometry added to the spatial formats).
CELL_COLUMNS = ["cell_id", "cell_i", "cell_j", "district_code", "admin_dong_id", "children", "centres", "places",
                "free_places", "children_per_place", "desert", "nearest_m", "sfca", "e2sfca", "places_in_reach",
                "blind_spot", "blind_rank", "gap_places"]
AREA_COLUMNS = ["code", "name", "children", "centres", "places", "free_places", "children_per_place", "desert",
                "nearest_m_mean", "share_beyond_reach", "sfca", "e2sfca", "blind_children", "gap_places"]


def _frames(result: PlannerResult) -> dict[str, gpd.GeoDataFrame]:
    cells = result.cells[[*CELL_COLUMNS, "geometry"]].to_crs(4326)
    cells["blind_rank"] = cells["blind_rank"].astype("float")  # nullable ints do not survive every driver
    dongs = result.dongs[["id", "district_code", "district_name", *AREA_COLUMNS, "geometry"]]
    districts = result.districts[[*AREA_COLUMNS, "geometry"]]
    blind = cells[cells["blind_spot"]].sort_values("blind_rank")
    return {"cells": cells, "dongs": dongs, "districts": districts, "blind_spots": blind}


def write_outputs(result: PlannerResult, out_dir: Path, *, sites: gpd.GeoDataFrame | None = None) -> list[Path]:
    """Write ``planner.gpkg`` (one layer per level), ``<level>.geojson`` (RFC 7946, EPSG:4326), ``<level>.csv``,
    ``report.md`` and ``map.html`` to ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = _frames(result)
    if sites is not None:
        frames["sites"] = sites
    written: list[Path] = []
    gpkg = out_dir / "planner.gpkg"
    gpkg.unlink(missing_ok=True)
    for name, frame in frames.items():
        frame.to_file(gpkg, layer=name, driver="GPKG")
        geojson = out_dir / f"{name}.geojson"
        geojson.unlink(missing_ok=True)
        frame.to_file(geojson, driver="GeoJSON")
        csv = out_dir / f"{name}.csv"
        pd.DataFrame(frame.drop(columns="geometry")).to_csv(csv, index=False)
        written += [geojson, csv]
    written.insert(0, gpkg)
    report = out_dir / "report.md"
    report.write_text(district_report(result, sites=sites), encoding="utf-8")
    page = out_dir / "map.html"
    save_self_contained(choropleth(result, sites=sites), page)
    return [*written, report, page]


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def district_report(result: PlannerResult, *, sites: gpd.GeoDataFrame | None = None, top: int = 10) -> str:
    """A Markdown report: parameters, city totals, one row per 구 (worst E2SFCA first), the top blind spots
    and, when given, the suggested sites."""
    p = result.params
    s = result.summary
    lines = [
        f"# Childcare planner report: service `{p.service}`, area {p.area_code}",
        "",
        f"Grid {p.cell_m:g} m (EPSG:5179), catchment {p.catchment_m:g} m, decay `{p.decay}`, E2SFCA zones "
        f"{', '.join(f'{z:g}' for z in p.zones)} m weighted {', '.join(f'{w:g}' for w in p.zone_weights)}. "
        "Children aged 0-5 are spread uniformly by area inside each 행정동.",
        "",
        f"{int(s['children']):,} children, {int(s['centres']):,} centres, {int(s['places']):,} places; "
        f"{int(s['blind_spots']):,} blind-spot cells holding {s['blind_children']:,.0f} children, "
        f"{s['gap_places']:,.0f} places short; {int(s['desert_dongs'])} 행정동 are childcare deserts.",
        "",
        "## By 구 (lowest accessibility first)",
        "",
        "| 구 | children | centres | places | children/place | desert | E2SFCA places/child | mean nearest m "
        "| share beyond reach | children in blind spots | places short |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for _, r in result.districts.sort_values("e2sfca").iterrows():
        lines.append(f"| {r['name']} | {r['children']:,.0f} | {r['centres']} | {r['places']:,} | "
                     f"{_fmt(r['children_per_place'])} | {'yes' if r['desert'] else 'no'} | {_fmt(r['e2sfca'], 3)} | "
                     f"{_fmt(r['nearest_m_mean'], 0)} | {_fmt(r['share_beyond_reach'], 3)} | "
                     f"{r['blind_children']:,.0f} | {r['gap_places']:,.0f} |")
    names = result.dongs.set_index("id")["name"]
    districts = result.districts.set_index("code")["name"]
    lines += ["", f"## Top {top} blind spots (grid cells, most places short first)", "",
              "| rank | cell | 구 | 행정동 | children | places in reach | E2SFCA | nearest m | places short |",
              "|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for _, r in result.blind_spots().head(top).iterrows():
        lines.append(f"| {r['blind_rank']} | {r['cell_id']} | {districts.get(r['district_code'], '-')} | "
                     f"{names.get(r['admin_dong_id'], '-')} | {r['children']:.1f} | {r['places_in_reach']:.0f} | "
                     f"{r['e2sfca']:.3f} | {_fmt(r['nearest_m'], 0)} | {r['gap_places']:.1f} |")
    if sites is not None and len(sites):
        lines += ["", f"## {len(sites)} suggested sites (maximal covering)", "",
                  f"Together they cover {sites['children_covered_total'].iloc[0]:,.1f} of "
                  f"{sites['unserved_children'].iloc[0]:,.1f} unserved children"
                  + ("" if bool(sites["optimal"].iloc[0]) else
                     f" (not proven optimal: any {len(sites)} sites cover at most "
                     f"{sites['children_covered_bound'].iloc[0]:,.1f})") + ".",
                  "", "| rank | cell | 구 | lat | lon | children newly covered |", "|---:|---|---|---:|---:|---:|"]
        for _, r in sites.iterrows():
            lines.append(f"| {r['rank']} | {r['cell_id']} | {districts.get(r['district_code'], '-')} | "
                         f"{r.geometry.y:.5f} | {r.geometry.x:.5f} | {r['children_newly_covered']:.1f} |")
    return "\n".join(lines) + "\n"


def choropleth(result: PlannerResult, *, column: str = "e2sfca", sites: gpd.GeoDataFrame | None = None) -> folium.Map:
    """A folium map: 행정동 shaded by ``column`` (places per child, E2SFCA by default), blind-spot cells in red,
    and the suggested sites as markers."""
    dongs = result.dongs[["id", "name", "district_name", column, "children", "geometry"]].copy()
    fmap = folium.Map(location=[37.5665, 126.978], zoom_start=11, tiles="OpenStreetMap")
    folium.Choropleth(
        geo_data=dongs.to_json(), data=dongs, columns=["id", column], key_on="feature.properties.id",
        fill_color="YlGnBu", nan_fill_color="lightgray",
        legend_name=f"{column}: places per child aged 0-5 (service {result.params.service})",
    ).add_to(fmap)
    blind = result.blind_spots()[["cell_id", "children", "gap_places", "geometry"]].to_crs(4326)
    if len(blind):
        folium.GeoJson(blind.to_json(), name="blind spots",
                       style_function=lambda _: {"color": "#c00", "weight": 0.5, "fillOpacity": 0.5},
                       tooltip=folium.GeoJsonTooltip(["cell_id", "children", "gap_places"])).add_to(fmap)
    if sites is not None:
        for _, r in sites.iterrows():
            folium.Marker([r.geometry.y, r.geometry.x],
                          tooltip=f"site {r['rank']}: {r['children_newly_covered']:.0f} children newly covered",
                          ).add_to(fmap)
    folium.LayerControl().add_to(fmap)
    return fmap
