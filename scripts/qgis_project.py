#!/usr/bin/env python3
"""Write ``gis/dolbom.qgs``, the QGIS project that opens every registered layer from a dolbom server: each layer as
an OGC API - Features layer (provider ``OAPIF``, every attribute) and the combined vector tiles as one XYZ vector
tile layer, with a style per layer.

    .venv/bin/python scripts/qgis_project.py            # print the project
    .venv/bin/python scripts/qgis_project.py --write    # write gis/dolbom.qgs

The layers come from the registry (``geo.layers.registry``); ``tests/gis/test_qgis_project.py`` checks that the
file is this script's output and that every data source answers. A new layer gets a plain style until one is
added to ``STYLES`` below. The server is ``http://127.0.0.1:8000`` (see docs/qgis.md for another).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.layers.base import Layer  # noqa: E402
from geo.layers.registry import LAYERS  # noqa: E402

SERVER = "http://127.0.0.1:8000"
TARGET = ROOT / "gis" / "dolbom.qgs"
QGIS_VERSION = "3.28.0-Firenze"  # the oldest LTR whose OAPIF and vector tile providers read this file
SEOUL_3857 = (14_100_000.0, 4_490_000.0, 14_170_000.0, 4_540_000.0)  # xmin, ymin, xmax, ymax in metres
CRS: dict[str, dict[str, str]] = {
    "EPSG:3857": {"proj4": "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m "
                           "+nadgrids=@null +wktext +no_defs", "srsid": "3857", "srid": "3857",
                  "description": "WGS 84 / Pseudo-Mercator", "projectionacronym": "merc",
                  "ellipsoidacronym": "EPSG:7030", "geographicflag": "false"},
    "EPSG:4326": {"proj4": "+proj=longlat +datum=WGS84 +no_defs", "srsid": "3452", "srid": "4326",
                  "description": "WGS 84", "projectionacronym": "longlat", "ellipsoidacronym": "EPSG:7030",
                  "geographicflag": "true"},
}
# Places per 100 children aged 0-5 (정원 / 아동 x 100; the 구 of the test data lie between 60 and 133): classes
# and colours, light = few places.
SUPPLY_CLASSES = ((0, 60, "#fee5d9", "below 60"), (60, 70, "#fcbba1", "60-70"), (70, 80, "#fc9272", "70-80"),
                  (80, 100, "#fb6a4a", "80-100"), (100, 150, "#de2d26", "100-150"),
                  (150, 100_000, "#a50f15", "150 and more"))
DRAW_ORDER = ("facilities", "blind_spots", "admin_dongs", "districts")  # top first
FREE = '"free_total" > 0'
FULL = '"free_total" IS NULL OR "free_total" <= 0'


def _option_map(values: dict[str, str]) -> ET.Element:
    options = ET.Element("Option", type="Map")
    for name, value in values.items():
        ET.SubElement(options, "Option", name=name, type="QString", value=value)
    return options


def _symbol(kind: str, name: str, props: dict[str, str], alpha: str = "1") -> ET.Element:
    """A QGIS symbol of one symbol layer (``SimpleMarker``, ``SimpleFill`` or ``SimpleLine``)."""
    symbol = ET.Element("symbol", type=kind, name=name, alpha=alpha, clip_to_extent="1", force_rhr="0",
                        is_animated="0", frame_rate="10")
    layer_class = {"marker": "SimpleMarker", "fill": "SimpleFill", "line": "SimpleLine"}[kind]
    layer = ET.SubElement(symbol, "layer", {"class": layer_class, "enabled": "1", "locked": "0", "pass": "0"})
    layer.append(_option_map(props))
    return symbol


def _marker(colour: str, size_mm: str = "2.2") -> dict[str, str]:
    return {"name": "circle", "color": colour, "outline_color": "#ffffff", "outline_width": "0.3",
            "outline_width_unit": "MM", "size": size_mm, "size_unit": "MM", "outline_style": "solid"}


def _fill(colour: str, outline: str = "#555555", outline_mm: str = "0.26", style: str = "solid") -> dict[str, str]:
    return {"color": colour, "style": style, "outline_color": outline, "outline_width": outline_mm,
            "outline_width_unit": "MM", "outline_style": "solid", "joinstyle": "round"}


def _facilities_renderer() -> ET.Element:
    """Centres: green with free places, grey when full (or unknown)."""
    renderer = ET.Element("renderer-v2", type="RuleRenderer", symbollevels="0", enableorderby="0",
                          forceraster="0", referencescale="-1")
    rules = ET.SubElement(renderer, "rules", key="root")
    ET.SubElement(rules, "rule", key="free", filter=FREE, label="free places", symbol="0")
    ET.SubElement(rules, "rule", key="full", filter="ELSE", label="full or unknown", symbol="1")
    symbols = ET.SubElement(renderer, "symbols")
    symbols.append(_symbol("marker", "0", _marker("#1a9641")))
    symbols.append(_symbol("marker", "1", _marker("#969696", "1.6")))
    return renderer


def _supply_renderer(outline_mm: str) -> ET.Element:
    """구 and 행정동: graduated by places per 100 children."""
    renderer = ET.Element("renderer-v2", type="graduatedSymbol", attr="places_per_100_children",
                          graduatedMethod="GraduatedColor", symbollevels="0", enableorderby="0", forceraster="0",
                          referencescale="-1")
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (lower, upper, colour, label) in enumerate(SUPPLY_CLASSES):
        ET.SubElement(ranges, "range", lower=str(lower), upper=str(upper), symbol=str(index), label=label,
                      render="true")
        symbols.append(_symbol("fill", str(index), _fill(colour, "#ffffff", outline_mm), alpha="0.75"))
    ET.SubElement(renderer, "classificationMethod", id="Manual")
    return renderer


def _single_renderer(kind: str, props: dict[str, str], alpha: str = "1") -> ET.Element:
    renderer = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0", forceraster="0",
                          referencescale="-1")
    ET.SubElement(renderer, "symbols").append(_symbol(kind, "0", props, alpha))
    return renderer


def _feature_renderer(layer: Layer) -> ET.Element:
    if layer.id == "facilities":
        return _facilities_renderer()
    if layer.id == "districts":
        return _supply_renderer("0.6")
    if layer.id == "admin_dongs":
        return _supply_renderer("0.2")
    if layer.id == "blind_spots":
        return _single_renderer("fill", _fill("#d7191c", "#d7191c", "0.2"), alpha="0.6")
    if layer.geometry_type.endswith("Point"):
        return _single_renderer("marker", _marker("#2b83ba"))
    return _single_renderer("fill", _fill("#2b83ba"), alpha="0.5")


def _tile_styles(layer: Layer) -> list[tuple[str, str, str, ET.Element]]:
    """(name, filter expression, geometry, symbol) of a source layer in the vector tile layer's basic renderer."""
    if layer.id == "facilities":
        return [("centres with free places", FREE, "0", _symbol("marker", "0", _marker("#1a9641"))),
                ("centres full or unknown", FULL, "0", _symbol("marker", "0", _marker("#969696", "1.6")))]
    if layer.id == "districts":
        return [("구", "", "2", _symbol("fill", "0", _fill("#ffffff", "#252525", "0.6", "no")))]
    if layer.id == "admin_dongs":
        return [("행정동", "", "2", _symbol("fill", "0", _fill("#ffffff", "#737373", "0.2", "no")))]
    if layer.id == "blind_spots":
        return [("blind spots", "", "2", _symbol("fill", "0", _fill("#d7191c", "#d7191c", "0.2"), alpha="0.6"))]
    if layer.geometry_type.endswith("Point"):
        return [(layer.title, "", "0", _symbol("marker", "0", _marker("#2b83ba")))]
    return [(layer.title, "", "2", _symbol("fill", "0", _fill("#2b83ba"), alpha="0.5"))]


def _srs(parent: ET.Element, authid: str) -> None:
    srs = ET.SubElement(parent, "spatialrefsys", nativeFormat="Wkt")
    for key, value in CRS[authid].items():
        ET.SubElement(srs, key).text = value
    ET.SubElement(srs, "authid").text = authid


def oapif_source(layer: Layer, server: str = SERVER) -> str:
    """The OAPIF provider's data source of ``layer`` (QGIS's WFS/OAPIF data source URI)."""
    return f"url='{server}/ogc' typename='{layer.id}' restrictToRequestBBOX='1' pageSize='1000'"


def tiles_source(server: str = SERVER) -> str:
    """The XYZ vector tile provider's data source of the combined tiles (a query string, the URL encoded)."""
    low = min(layer.minzoom for layer in LAYERS.values())
    high = max(layer.maxzoom for layer in LAYERS.values())
    url = quote(f"{server}/tiles/all/{{z}}/{{x}}/{{y}}.mvt", safe=":/")
    return f"type=xyz&url={url}&zmax={high}&zmin={low}"


def _maplayer(parent: ET.Element, kind: str, layer_id: str, name: str, source: str, provider: str,
              authid: str, **attributes: str) -> ET.Element:
    maplayer = ET.SubElement(parent, "maplayer", type=kind, hasScaleBasedVisibilityFlag="0", minScale="1e+08",
                             maxScale="0", autoRefreshEnabled="0", styleCategories="AllStyleCategories",
                             **attributes)
    ET.SubElement(maplayer, "id").text = layer_id
    ET.SubElement(maplayer, "datasource").text = source
    ET.SubElement(maplayer, "layername").text = name
    _srs(ET.SubElement(maplayer, "srs"), authid)
    ET.SubElement(maplayer, "provider", encoding="").text = provider
    return maplayer


def project() -> ET.ElementTree:
    """The project document."""
    root = ET.Element("qgis", projectname="dolbom", version=QGIS_VERSION)
    ET.SubElement(root, "homePath", path="")
    ET.SubElement(root, "title").text = "dolbom (돌봄): childcare centres and supply in Seoul"
    _srs(ET.SubElement(root, "projectCrs"), "EPSG:3857")

    tree = ET.SubElement(root, "layer-tree-group")
    tiles_group = ET.SubElement(tree, "layer-tree-group", name="Vector tiles (fast, every zoom)",
                                checked="Qt::Checked", expanded="1")
    features_group = ET.SubElement(tree, "layer-tree-group", name="OGC API - Features (every attribute)",
                                   checked="Qt::Unchecked", expanded="1")
    layers = ET.SubElement(root, "projectlayers")

    tiles_id = "dolbom_tiles_all"
    tiles_name = "dolbom map (vector tiles, every layer)"
    ET.SubElement(tiles_group, "layer-tree-layer", id=tiles_id, name=tiles_name, source=tiles_source(),
                  providerKey="xyzvectortiles", checked="Qt::Checked", expanded="0")
    maplayer = _maplayer(layers, "vector-tile", tiles_id, tiles_name, tiles_source(), "xyzvectortiles",
                         "EPSG:3857")
    styles = ET.SubElement(ET.SubElement(maplayer, "renderer", type="basic"), "styles")
    # Drawn in this order: areas first, centres on top.
    for layer in sorted(LAYERS.values(), key=lambda la: la.geometry_type.endswith("Point")):
        for name, expression, geometry, symbol in _tile_styles(layer):
            style = ET.SubElement(styles, "style", name=name, layer=layer.id, geometry=geometry, enabled="1",
                                  expression=expression, **{"min-zoom": str(layer.minzoom),
                                                            "max-zoom": str(layer.maxzoom)})
            ET.SubElement(style, "symbols").append(symbol)

    # Centres above blind spots above dongs above districts; a new layer below them.
    order = [LAYERS[i] for i in DRAW_ORDER if i in LAYERS] + [la for la in LAYERS.values() if la.id not in DRAW_ORDER]
    for layer in order:
        layer_id = f"dolbom_{layer.id}"
        ET.SubElement(features_group, "layer-tree-layer", id=layer_id, name=layer.title,
                      source=oapif_source(layer), providerKey="OAPIF", checked="Qt::Checked", expanded="0")
        maplayer = _maplayer(layers, "vector", layer_id, layer.title, oapif_source(layer), "OAPIF", "EPSG:4326",
                             geometry="Point" if layer.geometry_type.endswith("Point") else "Polygon",
                             wkbType=layer.geometry_type)
        maplayer.append(_feature_renderer(layer))

    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "meters"
    extent = ET.SubElement(canvas, "extent")
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), SEOUL_3857, strict=True):
        ET.SubElement(extent, key).text = str(value)
    ET.SubElement(canvas, "rotation").text = "0"
    _srs(ET.SubElement(canvas, "destinationsrs"), "EPSG:3857")
    ET.SubElement(root, "layerorder")  # empty: the layer tree's order
    ET.indent(root, space=" ")
    return ET.ElementTree(root)


def render() -> str:
    """The project file's text."""
    body = ET.tostring(project().getroot(), encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def main() -> None:
    """Print the project, or write it to gis/dolbom.qgs with --write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {TARGET.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.write:
        TARGET.parent.mkdir(exist_ok=True)
        TARGET.write_text(render(), encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main()
