"""Self-contained folium HTML: every script and stylesheet folium links from a CDN is inlined from a copy
vendored under ``geo/search/vendor/`` (from the npm packages leaflet 1.9.4, jquery 3.7.1, bootstrap 5.2.2 and
d3 3.5.17; licences next to them), so that a map written by ``dolbom map --out``, the planner or a notebook
renders without the internet (only the OpenStreetMap background tiles need it).

folium's icon-font assets (Font Awesome, Glyphicons, Leaflet.awesome-markers) are left out: they serve
``folium.Icon`` markers, which dolbom's maps do not draw (they use ``CircleMarker``), and their web fonts would
add megabytes to every file. A script or stylesheet that is neither vendored nor known to be unused is an error,
so that a new folium plugin cannot silently bring a CDN back.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from pathlib import Path

import folium

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"

# An asset folium links, by the end of its URL (the version folium pins may differ from the vendored one).
INLINED = {
    "leaflet.js": "leaflet/leaflet.js",
    "leaflet.css": "leaflet/leaflet.css",
    "jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "bootstrap.bundle.min.js": "bootstrap/bootstrap.bundle.min.js",
    "bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "d3.min.js": "d3/d3.min.js",
}
# Assets for folium.Icon markers only (see the module docstring).
LEFT_OUT = ("leaflet.awesome-markers.js", "leaflet.awesome-markers.css", "bootstrap-glyphicons.css",
            "fontawesome-free@6.2.0/css/all.min.css", "leaflet.awesome.rotate.min.css")

_SCRIPT = re.compile(r'<script src="(?P<url>https?://[^"]+)"></script>')
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="(?P<url>https?://[^"]+)"/?>')
_CSS_IMAGE = re.compile(r"url\((images/[^)]+\.png)\)")


class ExternalAsset(ValueError):
    """A map links a script or stylesheet that is neither vendored nor known to be unused."""


def _vendored(url: str) -> Path | None:
    for suffix, relative in INLINED.items():
        if url.endswith(suffix):
            return VENDOR_DIR / relative
    return None


def _css(path: Path) -> str:
    """A stylesheet with the images it names (Leaflet's layer and marker icons) as data: URIs."""
    text = path.read_text(encoding="utf-8")

    def data_uri(match: re.Match[str]) -> str:
        image = (path.parent / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(image).decode()})"

    return _CSS_IMAGE.sub(data_uri, text)


def _inline(match: re.Match[str], *, script: bool) -> str:
    url = match.group("url")
    if url.endswith(LEFT_OUT):
        return ""
    path = _vendored(url)
    if path is None:
        raise ExternalAsset(f"{url} is not vendored under {VENDOR_DIR}: add it there (and to INLINED)")
    if script:
        # "</script" inside the code would end the element early; "<\/" means the same in JavaScript.
        return "<script>" + path.read_text(encoding="utf-8").replace("</script", r"<\/script") + "</script>"
    return "<style>" + _css(path) + "</style>"


def self_contained_html(fmap: folium.Map) -> str:
    """The map's HTML page with every script and stylesheet inlined (no CDN).

    Raises
    ------
    ExternalAsset
        The map (a plugin) links a script or stylesheet that is not vendored.
    """
    page = fmap.get_root().render()
    page = _SCRIPT.sub(lambda m: _inline(m, script=True), page)
    return _STYLESHEET.sub(lambda m: _inline(m, script=False), page)


def save_self_contained(fmap: folium.Map, path: Path | str) -> None:
    """Write ``self_contained_html(fmap)`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    path = Path(path)
    page = self_contained_html(fmap)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
