"""Place search (구/동 names, centre names, address fragments) and reverse lookup of a point to its 동 and 구.

Both work offline in PostGIS. ``Geocoder`` is the protocol of place search; ``PostgisGeocoder`` is the
default. When ``Settings.external_geocoder_url`` is set, ``geocoder_for`` chains it after the offline one
(``NominatimGeocoder``: a Nominatim-compatible ``/search`` endpoint); the external service is never needed.
Reverse lookup stays in PostGIS because only our own polygons know our 동 codes.

Coordinates are EPSG:4326; a place's ``lon``/``lat`` is a point on its surface (``ST_PointOnSurface``) and
``bbox_4326`` is ``(lon_min, lat_min, lon_max, lat_max)``.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import text

from geo.domain import KOREA_BBOX_4326, OPERATING_STATUSES
from geo.errors import InvalidQuery, NotFound
from geo.search import Conn, validate_point
from geo.settings import Settings, get_settings

log = logging.getLogger(__name__)

PlaceKind = Literal["district", "admin_dong", "legal_dong", "facility", "external"]
MAX_QUERY_LENGTH = 100
MAX_TOKENS = 5
MAX_PLACES = 50


@dataclass(frozen=True)
class Place:
    """A named place to move the map to."""

    kind: PlaceKind
    code: str | None  # districts.code, admin_dongs.mois_code (else kostat_code), legal_dongs.code, facilities.code
    name: str
    label: str  # what to show, e.g. "마포구 서교동"
    lon: float
    lat: float
    bbox_4326: tuple[float, float, float, float] | None = None
    district_code: str | None = None
    district_name: str | None = None
    facility_id: int | None = None
    source: str = "postgis"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict, coordinates rounded to 7 decimals (~1 cm)."""
        out = asdict(self)
        out["lon"], out["lat"] = round(self.lon, 7), round(self.lat, 7)
        if self.bbox_4326 is not None:
            out["bbox_4326"] = [round(v, 7) for v in self.bbox_4326]
        return out


class Geocoder(Protocol):
    """Finds places by free text (Korean names and address fragments)."""

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """At most ``limit`` places matching ``query``, best first."""
        ...


def clean_query(query: str | None, *, limit: int, settings: Settings | None = None) -> tuple[str, list[str]]:
    """The stripped query and its whitespace tokens (at most five); rejects empty or long queries and a
    ``limit`` outside ``1..min(50, Settings.max_page_limit)``."""
    max_limit = min(MAX_PLACES, (settings or get_settings()).max_page_limit)
    if limit < 1 or limit > max_limit:
        raise InvalidQuery(f"limit must be between 1 and {max_limit} (got {limit})", param="limit")
    cleaned = " ".join((query or "").split())
    if not cleaned:
        raise InvalidQuery("q must not be empty", param="q")
    if len(cleaned) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"q must be at most {MAX_QUERY_LENGTH} characters", param="q")
    tokens = cleaned.split(" ")
    if len(tokens) > MAX_TOKENS:
        raise InvalidQuery(f"q must have at most {MAX_TOKENS} words", param="q")
    return cleaned, tokens


def _like(token: str) -> str:
    return "%" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# One branch per kind; {match_*} become "AND <haystack> ILIKE :tok_0 AND ..." built from constant fragments.
_PLACE_SEARCH_SQL = """
WITH candidates AS (
    SELECT 'district' AS kind, d.code, d.name, d.name AS label, d.code AS district_code,
           d.name AS district_name, CAST(NULL AS integer) AS facility_id, d.geom_4326, 0 AS kind_rank
    FROM districts d
    WHERE TRUE {match_district}
    UNION ALL
    SELECT 'admin_dong', COALESCE(a.mois_code, a.kostat_code), a.name, d.name || ' ' || a.name, a.district_code,
           d.name, NULL, a.geom_4326, 1
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    WHERE TRUE {match_admin_dong}
    UNION ALL
    SELECT 'legal_dong', l.code, l.name, d.name || ' ' || l.name, l.district_code, d.name, NULL, l.geom_4326, 2
    FROM legal_dongs l JOIN districts d ON d.code = l.district_code
    WHERE TRUE {match_legal_dong}
    UNION ALL
    SELECT 'facility', f.code, f.name, f.name || COALESCE(' · ' || f.address, ''), f.district_code,
           f.sigungu_name, f.id, f.geom_4326, 3
    FROM facilities f
    WHERE f.status = ANY(CAST(:statuses AS text[])) {match_facility}
)
SELECT kind, code, name, label, district_code, district_name, facility_id,
       ST_X(ST_PointOnSurface(geom_4326)) AS lon, ST_Y(ST_PointOnSurface(geom_4326)) AS lat,
       ST_XMin(geom_4326) AS xmin, ST_YMin(geom_4326) AS ymin, ST_XMax(geom_4326) AS xmax,
       ST_YMax(geom_4326) AS ymax
FROM candidates
ORDER BY (name = ANY(CAST(:tokens AS text[])) OR name = :query) DESC, kind_rank,
         (name ILIKE :prefix) DESC, length(name), name, code
LIMIT :limit"""

# Per kind, the text each token must occur in (constant SQL).
_HAYSTACKS: dict[str, str] = {
    "district": "(d.sido_name || ' ' || d.name)",
    "admin_dong": "(d.sido_name || ' ' || d.name || ' ' || a.name)",
    "legal_dong": "(d.sido_name || ' ' || d.name || ' ' || l.name)",
}


def _token_clauses(kind: str, count: int) -> str:
    if kind == "facility":
        # Separate ILIKEs on name and address so that both trigram indexes can be used.
        return "".join(f" AND (f.name ILIKE :tok_{i} OR f.address ILIKE :tok_{i})" for i in range(count))
    return "".join(f" AND {_HAYSTACKS[kind]} ILIKE :tok_{i}" for i in range(count))


class PostgisGeocoder:
    """Offline place search in the database: 구, 행정동, 법정동 and operating centres (name or address).

    Every word of the query must occur in the place's text (구 and 동 also match their parent names, so
    ``마포구 서교동`` finds 서교동 in 마포구); exact names rank first, then 구, 행정동, 법정동, centres.
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """At most ``limit`` places matching every word of ``query``, best first."""
        cleaned, tokens = clean_query(query, limit=limit)
        fragments = {f"match_{kind}": _token_clauses(kind, len(tokens))
                     for kind in ("district", "admin_dong", "legal_dong", "facility")}
        sql = text(_PLACE_SEARCH_SQL.format(**fragments))
        params: dict[str, Any] = {f"tok_{i}": _like(tok) for i, tok in enumerate(tokens)}
        params |= {"tokens": tokens, "query": cleaned, "prefix": _like(tokens[-1])[1:], "limit": limit,
                   "statuses": [s.value for s in OPERATING_STATUSES]}
        return [
            Place(kind=r.kind, code=r.code, name=r.name, label=r.label, lon=float(r.lon), lat=float(r.lat),
                  bbox_4326=(float(r.xmin), float(r.ymin), float(r.xmax), float(r.ymax)),
                  district_code=r.district_code, district_name=r.district_name, facility_id=r.facility_id)
            for r in self.conn.execute(sql, params)
        ]


class NominatimGeocoder:
    """An external Nominatim-compatible geocoder (``GET {url}/search?q=&format=jsonv2&limit=``).

    Results outside Korea are dropped. Network errors are logged and yield no places.
    """

    def __init__(self, url: str, *, timeout_s: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """At most ``limit`` places from the external service."""
        params = urllib.parse.urlencode({"q": query, "format": "jsonv2", "limit": limit, "countrycodes": "kr"})
        request = urllib.request.Request(f"{self.url}/search?{params}", headers={"User-Agent": "dolbom"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("external geocoder %s failed: %s", self.url, exc)
            return []
        lon_min, lat_min, lon_max, lat_max = KOREA_BBOX_4326
        places: list[Place] = []
        for item in payload if isinstance(payload, list) else []:
            try:
                lon, lat = float(item["lon"]), float(item["lat"])
            except (KeyError, TypeError, ValueError):
                continue
            if not (lon_min <= lon <= lon_max and lat_min <= lat <= lat_max):
                continue
            bbox = None
            if isinstance(item.get("boundingbox"), list) and len(item["boundingbox"]) == 4:
                south, north, west, east = (float(v) for v in item["boundingbox"])
                bbox = (west, south, east, north)
            label = str(item.get("display_name") or item.get("name") or query)
            places.append(Place(kind="external", code=str(item.get("osm_id") or "") or None,
                                name=str(item.get("name") or label), label=label, lon=lon, lat=lat,
                                bbox_4326=bbox, source=self.url))
            if len(places) >= limit:
                break
        return places


class ChainedGeocoder:
    """Asks geocoders in order until ``limit`` places are found."""

    def __init__(self, *geocoders: Geocoder) -> None:
        self.geocoders = geocoders

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """Places of the first geocoder, topped up by the next ones."""
        places: list[Place] = []
        for geocoder in self.geocoders:
            if len(places) >= limit:
                break
            places.extend(geocoder.search(query, limit=limit - len(places)))
        return places


def geocoder_for(conn: Conn, *, settings: Settings | None = None) -> Geocoder:
    """The configured geocoder: offline PostGIS, followed by the external one when a URL is configured."""
    settings = settings or get_settings()
    offline = PostgisGeocoder(conn)
    if settings.external_geocoder_url:
        return ChainedGeocoder(offline, NominatimGeocoder(settings.external_geocoder_url))
    return offline


def search_places(conn: Conn, *, query: str, limit: int = 10, settings: Settings | None = None) -> list[Place]:
    """Places matching ``query`` with the configured geocoder (see ``geocoder_for``)."""
    settings = settings or get_settings()
    clean_query(query, limit=limit, settings=settings)
    return geocoder_for(conn, settings=settings).search(query, limit=limit)


@dataclass(frozen=True)
class ReverseResult:
    """The 구, 행정동 and 법정동 containing a point (EPSG:4326); any may be ``None`` near boundary gaps."""

    lat: float
    lon: float
    district: Place | None
    admin_dong: Place | None
    legal_dong: Place | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {"lat": self.lat, "lon": self.lon,
                "district": self.district.as_dict() if self.district else None,
                "admin_dong": self.admin_dong.as_dict() if self.admin_dong else None,
                "legal_dong": self.legal_dong.as_dict() if self.legal_dong else None}


# Constant templates; {bbox} and {point} are filled with the constants below (values stay bound).
_REVERSE_TEMPLATES: dict[str, str] = {
    "district": """
        SELECT x.code, x.name, x.sido_name, {bbox}
        FROM districts x WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.code LIMIT 1""",
    "admin_dong": """
        SELECT COALESCE(x.mois_code, x.kostat_code) AS code, x.name, x.district_code,
               d.name AS district_name, {bbox}
        FROM admin_dongs x JOIN districts d ON d.code = x.district_code
        WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.id LIMIT 1""",
    "legal_dong": """
        SELECT x.code, x.name, x.district_code, d.name AS district_name, {bbox}
        FROM legal_dongs x JOIN districts d ON d.code = x.district_code
        WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.code LIMIT 1""",
}
_BBOX_COLUMNS = ("ST_X(ST_PointOnSurface(x.geom_4326)) AS px, ST_Y(ST_PointOnSurface(x.geom_4326)) AS py, "
                 "ST_XMin(x.geom_4326) AS xmin, ST_YMin(x.geom_4326) AS ymin, "
                 "ST_XMax(x.geom_4326) AS xmax, ST_YMax(x.geom_4326) AS ymax")
_REVERSE_SQL = {kind: text(template.format(bbox=_BBOX_COLUMNS, point="ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"))
                for kind, template in _REVERSE_TEMPLATES.items()}


def _place(kind: PlaceKind, row: Any, *, label: str, district_code: str, district_name: str) -> Place:
    return Place(kind=kind, code=row.code, name=row.name, label=label, lon=float(row.px), lat=float(row.py),
                 bbox_4326=(float(row.xmin), float(row.ymin), float(row.xmax), float(row.ymax)),
                 district_code=district_code, district_name=district_name)


def reverse_lookup(conn: Conn, *, lat: float, lon: float) -> ReverseResult:
    """The 구, 행정동 and 법정동 whose polygons contain (lat, lon) EPSG:4326 (point-in-polygon in PostGIS).

    Raises
    ------
    InvalidQuery
        Bad coordinates (see ``geo.search.validate_point``).
    NotFound
        No loaded 구 or 동 contains the point.
    """
    validate_point(lat=lat, lon=lon)
    params = {"lat": lat, "lon": lon}
    d = conn.execute(_REVERSE_SQL["district"], params).first()
    a = conn.execute(_REVERSE_SQL["admin_dong"], params).first()
    legal = conn.execute(_REVERSE_SQL["legal_dong"], params).first()
    if d is None and a is None and legal is None:
        raise NotFound(f"no 구 or 동 contains lat={lat}, lon={lon}; are the boundaries of that region loaded?",
                       lat=lat, lon=lon)
    district = _place("district", d, label=f"{d.sido_name} {d.name}", district_code=d.code,
                      district_name=d.name) if d else None
    admin_dong = _place("admin_dong", a, label=f"{a.district_name} {a.name}", district_code=a.district_code,
                        district_name=a.district_name) if a else None
    legal_dong = _place("legal_dong", legal, label=f"{legal.district_name} {legal.name}",
                        district_code=legal.district_code, district_name=legal.district_name) if legal else None
    return ReverseResult(lat=lat, lon=lon, district=district, admin_dong=admin_dong, legal_dong=legal_dong)


# Share of the smaller of the two areas that a 행정동 and a 법정동 must have in common for the 행정동 to be a
# candidate: the two boundary sources differ by metres along shared streets, which makes slivers, not shares.
LEGAL_DONG_OVERLAP_SHARE = 0.05

_ADMIN_DONGS_OF_LEGAL_DONG = text("""
    SELECT a.name, a.mois_code, a.kostat_code, a.district_code, d.name AS district_name,
           l.name AS legal_dong_name, l.code AS legal_dong_code
    FROM legal_dongs l
    JOIN admin_dongs a ON a.district_code = l.district_code AND ST_Intersects(a.geom_4326, l.geom_4326)
    JOIN districts d ON d.code = a.district_code
    WHERE l.name = :name AND (CAST(:district_code AS text) IS NULL OR l.district_code = :district_code)
      AND ST_Area(ST_Intersection(a.geom_4326, l.geom_4326)::geography)
          >= :share * LEAST(ST_Area(a.geom_4326::geography), ST_Area(l.geom_4326::geography))
    ORDER BY a.district_code, a.name, a.id""")


def admin_dongs_of_legal_dong(conn: Conn, *, name: str, district_code: str | None = None) -> list[dict[str, Any]]:
    """The 행정동 that share area with the 법정동 called ``name`` (in 구 ``district_code`` when given), e.g.
    역삼동 -> 역삼1동, 역삼2동; empty when no 법정동 has that name.

    Each candidate: ``name``, ``district_name``, ``district_code``, ``mois_code``, ``kostat_code`` and the
    ``legal_dong_name``/``legal_dong_code`` it overlaps.
    """
    rows = conn.execute(_ADMIN_DONGS_OF_LEGAL_DONG, {"name": name, "district_code": district_code,
                                                     "share": LEGAL_DONG_OVERLAP_SHARE}).mappings().all()
    return [dict(r) for r in rows]
