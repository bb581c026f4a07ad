"""CRSs served by the OGC API (Part 2): URIs, SRIDs and axis order.

CRS84 is longitude-latitude; EPSG:4326, 5179 and 5186 are northing/latitude first as their EPSG definitions say,
so coordinates in those CRSs are flipped on the way out (and bounding boxes on the way in).
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.errors import InvalidQuery

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@dataclass(frozen=True)
class ServedCrs:
    """A CRS we serve: its URI, PostGIS SRID and whether its first axis is north (lat/northing)."""

    uri: str
    srid: int
    north_first: bool


SERVED: tuple[ServedCrs, ...] = (
    ServedCrs(CRS84, 4326, False),
    ServedCrs(_EPSG + "4326", 4326, True),
    ServedCrs(_EPSG + "3857", 3857, False),
    ServedCrs(_EPSG + "5179", 5179, True),
    ServedCrs(_EPSG + "5186", 5186, True),
)
_BY_URI = {c.uri: c for c in SERVED}
DEFAULT = SERVED[0]
CRS_URIS: tuple[str, ...] = tuple(c.uri for c in SERVED)


def parse_crs(value: str | None, *, param: str = "crs") -> ServedCrs:
    """The served CRS named by ``value`` (a URI, ``[EPSG:n]`` safe CURIE or ``EPSG:n``); CRS84 when None."""
    if value is None or value == "":
        return DEFAULT
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    upper = text.upper()
    if upper in ("CRS84", "OGC:CRS84"):
        return DEFAULT
    if upper.startswith("EPSG:"):
        text = _EPSG + text[5:]
    text = text.replace("https://", "http://")
    found = _BY_URI.get(text)
    if found is None:
        raise InvalidQuery(f"{param} {value!r} is not served; use one of {', '.join(CRS_URIS)}",
                           param=param, supported=list(CRS_URIS))
    return found


def parse_bbox(value: str, *, crs: ServedCrs) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in ``crs`` axis order -> (xmin, ymin, xmax, ymax) in the CRS's x/y (east/north).

    In longitude/latitude ``xmin > xmax`` is allowed: the box crosses the antimeridian.
    """
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise InvalidQuery(f"bbox {value!r} is not four comma-separated numbers", param="bbox") from None
    if len(numbers) == 6:  # 3D bbox: drop the heights
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise InvalidQuery(f"bbox {value!r} must have 4 numbers", param="bbox")
    a, b, c, d = numbers
    if crs.north_first:
        a, b, c, d = b, a, d, c
    # In longitude/latitude a west edge east of the east edge is a box across the antimeridian (OGC API -
    # Features Part 1, 7.15.3): kept as given, ``features.conditions`` splits it in two.
    if (a > c and crs.srid != 4326) or b > d:
        raise InvalidQuery(f"bbox {value!r}: lower corner must come before the upper corner", param="bbox")
    return a, b, c, d
