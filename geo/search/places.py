"""Place search (구/동 names, centre names, address fragments) and reverse lookup of a point to its 동 and 구.

Both work offline in PostGIS. ``Geocoder`` is the protocol of place search; ``PostgisGeocoder`` is the
default. When ``DOLBOM_GEOCODER_URL`` (``settings.search.geocoder_url``) is set, ``geocoder_for`` chains it
after the offline one (``NominatimGeocoder``: a Nominatim-compatible ``/search`` endpoint); the external service
is never needed.
Reverse lookup stays in PostGIS because only our own polygons know our 동 codes.

Coordinates are EPSG:4326; a place's ``lon``/``lat`` is a point on its surface (``ST_PointOnSurface``) and
``bbox_4326`` is ``(lon_min, lat_min, lon_max, lat_max)``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row, namedtuple_row

from geo.db import Conn, driver_connection
from geo.domain import KOREA_BBOX_4326, OPERATING_STATUSES
from geo.errors import InvalidQuery, NotFound
from geo.search.romanize import is_latin, latin_key, romanize
from geo.settings import Settings
from geo.validation import clean_text, validate_point

log = logging.getLogger(__name__)

PlaceKind = Literal["district", "admin_dong", "legal_dong", "building", "address", "facility", "external"]
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
    label_latin: str | None = None  # the label in Revised Romanization (구 and 동), for pages not in Korean

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


def clean_query(query: str | None, *, limit: int, settings: Settings) -> tuple[str, list[str]]:
    """The stripped, NFC-normalised query and its whitespace tokens (at most five); rejects empty or long
    queries, control characters and a ``limit`` outside ``1..min(50, settings.search.max_page_limit)``."""
    max_limit = min(MAX_PLACES, settings.search.max_page_limit)
    if limit < 1 or limit > max_limit:
        raise InvalidQuery(f"limit must be between 1 and {max_limit} (got {limit})", param="limit")
    cleaned = " ".join((clean_text(query, param="q", max_length=10 * MAX_QUERY_LENGTH) or "").split())
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


# One branch per kind; {match_*} become "AND <haystack> ILIKE %(tok_0)s AND ..." (psycopg.sql, values bound).
_PLACE_SEARCH_SQL = sql.SQL(r"""
WITH candidates AS (
    SELECT 'district' AS kind, d.code, d.name, d.name AS label, d.code AS district_code,
           d.name AS district_name, NULL::integer AS facility_id, d.geom_4326, 0 AS kind_rank
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
    SELECT 'building', NULL, b.building, b.building || ' (' || b.sigungu_name || ' ' || b.dong || ')',
           b.district_code, b.sigungu_name, NULL, ST_Centroid(ST_Collect(b.geom_4326)), 3
    FROM (SELECT f.district_code, f.sigungu_name, f.geom_4326, btrim(m[1]) AS dong, btrim(m[2]) AS building
          FROM facilities f, regexp_match(f.address, '\(([^,()]+),([^()]+)\)\s*$') AS m
          WHERE f.geom_4326 IS NOT NULL AND NOT f.location_approximate {match_address}) b
    WHERE TRUE {match_building}
    GROUP BY b.building, b.dong, b.district_code, b.sigungu_name
    UNION ALL
    SELECT 'facility', f.code, f.name, f.name || COALESCE(' · ' || f.address, ''), f.district_code,
           f.sigungu_name, f.id, f.geom_4326, 4
    FROM facilities f
    WHERE f.status = ANY(%(statuses)s::text[]) {match_facility}
)
SELECT kind, code, name, label, district_code, district_name, facility_id,
       ST_X(ST_PointOnSurface(geom_4326)) AS lon, ST_Y(ST_PointOnSurface(geom_4326)) AS lat,
       ST_XMin(geom_4326) AS xmin, ST_YMin(geom_4326) AS ymin, ST_XMax(geom_4326) AS xmax,
       ST_YMax(geom_4326) AS ymax
FROM candidates
ORDER BY (name = ANY(%(tokens)s::text[]) OR name = %(query)s) DESC, kind_rank,
         (name ILIKE %(prefix)s) DESC, length(name), name, code
LIMIT %(limit)s""")

# Per kind, the text each token must occur in (constant SQL).
_HAYSTACKS: dict[str, sql.SQL] = {
    "district": sql.SQL("(d.sido_name || ' ' || d.name)"),
    "admin_dong": sql.SQL("(d.sido_name || ' ' || d.name || ' ' || a.name)"),
    "legal_dong": sql.SQL("(d.sido_name || ' ' || d.name || ' ' || l.name)"),
}


def _token_clauses(kind: str, count: int) -> sql.Composable:
    if kind == "address":
        clause = sql.SQL(" AND f.address ILIKE {tok}")
        return sql.Composed([clause.format(tok=sql.Placeholder(f"tok_{i}")) for i in range(count)])
    if kind == "building":
        clause = sql.SQL(" AND b.building ILIKE {tok}")
        return sql.Composed([clause.format(tok=sql.Placeholder(f"tok_{i}")) for i in range(count)])
    if kind == "facility":
        # Separate ILIKEs on name and address so that both trigram indexes can be used.
        clause = sql.SQL(" AND (f.name ILIKE {tok} OR f.address ILIKE {tok})")
        return sql.Composed([clause.format(tok=sql.Placeholder(f"tok_{i}")) for i in range(count)])
    clause = sql.SQL(" AND {haystack} ILIKE {tok}")
    return sql.Composed([clause.format(haystack=_HAYSTACKS[kind], tok=sql.Placeholder(f"tok_{i}"))
                         for i in range(count)])


class PostgisGeocoder:
    """Offline place search in the database: 구, 행정동, 법정동 and operating centres (name or address).

    Every word of the query must occur in the place's text (구 and 동 also match their parent names, so
    ``마포구 서교동`` finds 서교동 in 마포구); exact names rank first, then 구, 행정동, 법정동, centres.
    """

    def __init__(self, conn: Conn, *, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings

    def search(self, query: str, *, limit: int = 10) -> list[Place]:
        """At most ``limit`` places for ``query``, best first: for a Latin query the romanised 구/동 names, then
        the names that contain its words (centres such as "LG유플러스 상암어린이집"); otherwise a road-name address
        first (if the query is one and the road is known), then every word matched in names and addresses."""
        cleaned, tokens = clean_query(query, limit=limit, settings=self.settings)
        if is_latin(cleaned):
            areas = latin_places(self.conn, cleaned, limit=limit)
            named = [p for p in self._matching(cleaned, tokens, limit=limit) if p not in areas]
            return [*areas, *named][:limit]
        address = parse_road_address(cleaned)
        first = road_address_place(self.conn, address) if address is not None else None
        if is_station_query(tokens):
            # No station data is imported: a station's name inside a centre's name (강남역삼럭키어린이집, 1.4 km
            # from 강남역) is not the station. Nothing found is the honest answer; the page says what can be searched.
            return []
        places = self._matching(cleaned, tokens, limit=limit)
        # A road-name address comes first; the centres whose address matches word for word follow.
        return [first, *places][:limit] if first is not None else places

    def _matching(self, cleaned: str, tokens: list[str], *, limit: int) -> list[Place]:
        """The places whose names or addresses hold every word (best first)."""
        fragments = {f"match_{kind}": _token_clauses(kind, len(tokens))
                     for kind in ("district", "admin_dong", "legal_dong", "address", "building", "facility")}
        statement = _PLACE_SEARCH_SQL.format(**fragments)
        params: dict[str, Any] = {f"tok_{i}": _like(tok) for i, tok in enumerate(tokens)}
        params |= {"tokens": tokens, "query": cleaned, "prefix": _like(tokens[-1])[1:], "limit": limit,
                   "statuses": [s.value for s in OPERATING_STATUSES]}
        with driver_connection(self.conn).cursor(row_factory=namedtuple_row) as cur:
            rows: list[Any] = cur.execute(statement, params).fetchall()
        places = [
            Place(kind=r.kind, code=r.code, name=r.name, label=r.label, lon=float(r.lon), lat=float(r.lat),
                  bbox_4326=(float(r.xmin), float(r.ymin), float(r.xmax), float(r.ymax)),
                  district_code=r.district_code, district_name=r.district_name, facility_id=r.facility_id,
                  label_latin=_latin_label(r.kind, r.name, r.district_name))
            for r in rows
        ]
        return places


def _latin_label(kind: str, name: str, district_name: str | None) -> str | None:
    if kind == "district":
        return romanize(name)
    if kind in ("admin_dong", "legal_dong"):
        return f"{romanize(name)}, {romanize(district_name)}" if district_name else romanize(name)
    return None


def is_station_query(tokens: list[str]) -> bool:
    """Whether the query names a railway station ('강남역', '서울대입구역'): one word ending in 역."""
    return len(tokens) == 1 and len(tokens[0]) >= 2 and tokens[0].endswith("역") and bool(
        re.fullmatch(r"[가-힣0-9]+", tokens[0]))


@dataclass(frozen=True)
class RoadAddress:
    """A road-name address (도로명주소): road, building main number and optional sub-number, optional 구."""

    road: str
    number: int
    sub: int | None = None
    district: str | None = None


_ROAD_ADDRESS = re.compile(
    r"(?:서울(?:특별시|시)?\s+)?(?:(?P<district>[가-힣]+구)\s+)?(?P<road>[가-힣][가-힣0-9]*(?:로|길))\s*"
    r"(?P<number>\d{1,5})(?:-(?P<sub>\d{1,5}))?(?:번지)?")


def parse_road_address(query: str) -> RoadAddress | None:
    """'테헤란로 152', '강남구 테헤란로 152', '테헤란로44길 26-3' -> a ``RoadAddress``; anything else -> None."""
    match = _ROAD_ADDRESS.fullmatch(query.strip())
    if match is None:
        return None
    return RoadAddress(road=match["road"], number=int(match["number"]),
                       sub=int(match["sub"]) if match["sub"] else None, district=match["district"])


# Centres with a precise point whose address is on the road, with their building number. The road is matched as a
# whole word ('테헤란로 ' does not match '테헤란로44길 '); the road text is [가-힣0-9] only (parse_road_address), and
# bound, not written into the SQL.
_ROAD_CENTRES_SQL = """
    SELECT (substring(f.address FROM %(pattern)s))::int AS number, f.sigungu_name, f.district_code,
           ST_X(f.geom_4326) AS lon, ST_Y(f.geom_4326) AS lat
    FROM facilities f
    WHERE f.address LIKE %(like)s AND f.address ~ %(pattern)s AND f.geom_4326 IS NOT NULL
      AND NOT f.location_approximate AND (%(district)s::text IS NULL OR f.sigungu_name = %(district)s)
    ORDER BY number, f.id"""

# Farther than this many building numbers (about 10 m each) from the nearest known number on one side only, a
# road-name address is not placed: the road may bend or end.
MAX_EXTRAPOLATION_NUMBERS = 60


def road_address_place(conn: Conn, address: RoadAddress) -> Place | None:
    """Where a road-name address is: the point of a centre at that address, else interpolated along the road
    between the centres with the nearest building numbers below and above (same side of the road first: odd
    numbers on the left, even on the right; a number is about 10 m along the road), else None."""
    params = {"pattern": rf"(?:^|\s){address.road}\s+(\d+)", "like": f"%{address.road} %",
              "district": address.district}
    with driver_connection(conn).cursor(row_factory=namedtuple_row) as cur:
        rows: list[Any] = cur.execute(_ROAD_CENTRES_SQL, params).fetchall()
    if not rows:
        return None
    target = address.number
    same_side = [r for r in rows if r.number % 2 == target % 2] or rows
    exact = [r for r in same_side if r.number == target]
    label = f"{rows[0].sigungu_name} {address.road} {target}" + (f"-{address.sub}" if address.sub else "")
    common = {"kind": "address", "code": None, "name": f"{address.road} {target}", "label": label,
              "district_code": rows[0].district_code, "district_name": rows[0].sigungu_name}
    if exact:
        lon = sum(r.lon for r in exact) / len(exact)
        lat = sum(r.lat for r in exact) / len(exact)
        return Place(lon=lon, lat=lat, source="centre_address", **common)
    below = [r for r in same_side if r.number < target]
    above = [r for r in same_side if r.number > target]
    if below and above:
        a, b = below[-1], above[0]
        share = (target - a.number) / (b.number - a.number)
        return Place(lon=a.lon + share * (b.lon - a.lon), lat=a.lat + share * (b.lat - a.lat),
                     source="interpolated", **common)
    nearest = below[-1] if below else above[0]
    if abs(nearest.number - target) > MAX_EXTRAPOLATION_NUMBERS:
        return None
    return Place(lon=nearest.lon, lat=nearest.lat, source="nearest_on_road", **common)


# Well-known names of areas that are no 구 or 동 of their own, and the 동 they lie in.
AREA_ALIASES: dict[str, tuple[str, str]] = {"홍대": ("마포구", "서교동"), "홍대입구": ("마포구", "서교동")}

_AREA_NAMES_SQL = """
    SELECT 'district' AS kind, d.code, d.name, d.name AS district_name, 0 AS kind_rank FROM districts d
    UNION ALL
    SELECT 'admin_dong', COALESCE(a.mois_code, a.kostat_code), a.name, d.name, 1
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    UNION ALL
    SELECT 'legal_dong', l.code, l.name, d.name, 2 FROM legal_dongs l JOIN districts d ON d.code = l.district_code"""

_AREA_GEOMETRY_SQL = """
    SELECT c.ord, ST_X(ST_PointOnSurface(g.geom_4326)) AS lon, ST_Y(ST_PointOnSurface(g.geom_4326)) AS lat,
           ST_XMin(g.geom_4326) AS xmin, ST_YMin(g.geom_4326) AS ymin, ST_XMax(g.geom_4326) AS xmax,
           ST_YMax(g.geom_4326) AS ymax, g.district_code
    FROM unnest(%(kinds)s::text[], %(codes)s::text[]) WITH ORDINALITY AS c(kind, code, ord)
    JOIN LATERAL (
        SELECT geom_4326, code AS district_code FROM districts WHERE c.kind = 'district' AND code = c.code
        UNION ALL
        SELECT geom_4326, district_code FROM admin_dongs
        WHERE c.kind = 'admin_dong' AND COALESCE(mois_code, kostat_code) = c.code
        UNION ALL
        SELECT geom_4326, district_code FROM legal_dongs WHERE c.kind = 'legal_dong' AND code = c.code
        LIMIT 1) g ON TRUE
    ORDER BY c.ord"""


def latin_places(conn: Conn, query: str, *, limit: int) -> list[Place]:
    """구 and 동 whose Revised Romanization matches a Latin query ('Gangnam', 'Mapo-gu', 'Seogyo-dong', 'Mapo-gu
    Seogyo-dong', 'Hongdae'): every word must begin the romanised name of the place or of its 구, and at least one
    the place's own. Exact names first, then 구, 행정동, 법정동."""
    words = [k for w in re.split(r"[\s,]+", query) if (k := latin_key(w))]
    if not words:
        return []
    aliases = {latin_key(romanize(alias)): target for alias, target in AREA_ALIASES.items()}
    alias_hits = [aliases[w] for w in words if w in aliases]
    with driver_connection(conn).cursor(row_factory=namedtuple_row) as cur:
        areas: list[Any] = cur.execute(_AREA_NAMES_SQL).fetchall()
        scored = []
        for area in areas:
            own = latin_key(romanize(area.name))
            own_base = latin_key(romanize(area.name).rsplit("-", 1)[0])
            parent = latin_key(romanize(area.district_name))
            own_hit = any(own.startswith(w) for w in words)
            if (area.district_name, area.name) in alias_hits:
                scored.append((-1, area.kind_rank, len(area.name), area))
            elif own_hit and all(own.startswith(w) or parent.startswith(w) for w in words):
                exact = any(w in (own, own_base) for w in words)
                scored.append((0 if exact else 1, area.kind_rank, len(area.name), area))
        scored.sort(key=lambda s: (s[0], s[1], s[2], s[3].name))
        chosen = [s[3] for s in scored[:limit]]
        if not chosen:
            return []
        geometries: list[Any] = cur.execute(_AREA_GEOMETRY_SQL, {"kinds": [a.kind for a in chosen],
                                                                "codes": [a.code for a in chosen]}).fetchall()
    places = []
    for area, g in zip(chosen, geometries, strict=True):
        label = area.name if area.kind == "district" else f"{area.district_name} {area.name}"
        places.append(Place(kind=area.kind, code=area.code, name=area.name, label=label, lon=float(g.lon),
                            lat=float(g.lat), bbox_4326=(float(g.xmin), float(g.ymin), float(g.xmax),
                                                         float(g.ymax)),
                            district_code=g.district_code, district_name=area.district_name,
                            label_latin=_latin_label(area.kind, area.name, area.district_name)))
    return places


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
            log.warning("external geocoder %s failed: %s", self.url, type(exc).__name__)  # the error names the query
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


def geocoder_for(conn: Conn, *, settings: Settings) -> Geocoder:
    """The configured geocoder: offline PostGIS, followed by the external one when a URL is configured."""
    offline = PostgisGeocoder(conn, settings=settings)
    if settings.search.geocoder_url:
        return ChainedGeocoder(offline, NominatimGeocoder(settings.search.geocoder_url))
    return offline


def search_places(conn: Conn, *, query: str, settings: Settings, limit: int = 10) -> list[Place]:
    """Places matching ``query`` with the configured geocoder (see ``geocoder_for``)."""
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


_BBOX_COLUMNS = sql.SQL(
    "ST_X(ST_PointOnSurface(x.geom_4326)) AS px, ST_Y(ST_PointOnSurface(x.geom_4326)) AS py, "
    "ST_XMin(x.geom_4326) AS xmin, ST_YMin(x.geom_4326) AS ymin, "
    "ST_XMax(x.geom_4326) AS xmax, ST_YMax(x.geom_4326) AS ymax")
_POINT = sql.SQL("ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)")
_REVERSE_SQL: dict[str, sql.Composed] = {
    "district": sql.SQL("""
        SELECT x.code, x.name, x.sido_name, {bbox}
        FROM districts x WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.code LIMIT 1""").format(bbox=_BBOX_COLUMNS, point=_POINT),
    "admin_dong": sql.SQL("""
        SELECT COALESCE(x.mois_code, x.kostat_code) AS code, x.name, x.district_code,
               d.name AS district_name, {bbox}
        FROM admin_dongs x JOIN districts d ON d.code = x.district_code
        WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.id LIMIT 1""").format(bbox=_BBOX_COLUMNS, point=_POINT),
    "legal_dong": sql.SQL("""
        SELECT x.code, x.name, x.district_code, d.name AS district_name, {bbox}
        FROM legal_dongs x JOIN districts d ON d.code = x.district_code
        WHERE ST_Intersects(x.geom_4326, {point})
        ORDER BY x.code LIMIT 1""").format(bbox=_BBOX_COLUMNS, point=_POINT),
}


def _place(kind: PlaceKind, row: Any, *, label: str, district_code: str, district_name: str) -> Place:
    return Place(kind=kind, code=row.code, name=row.name, label=label, lon=float(row.px), lat=float(row.py),
                 bbox_4326=(float(row.xmin), float(row.ymin), float(row.xmax), float(row.ymax)),
                 district_code=district_code, district_name=district_name)


def reverse_lookup(conn: Conn, *, lat: float, lon: float) -> ReverseResult:
    """The 구, 행정동 and 법정동 whose polygons contain (lat, lon) EPSG:4326 (point-in-polygon in PostGIS).

    Raises
    ------
    InvalidQuery
        Bad coordinates (see ``geo.validation.validate_point``).
    NotFound
        No loaded 구 or 동 contains the point.
    """
    validate_point(lat=lat, lon=lon)
    params = {"lat": lat, "lon": lon}
    with driver_connection(conn).cursor(row_factory=namedtuple_row) as cur:
        d: Any = cur.execute(_REVERSE_SQL["district"], params).fetchone()
        a: Any = cur.execute(_REVERSE_SQL["admin_dong"], params).fetchone()
        legal: Any = cur.execute(_REVERSE_SQL["legal_dong"], params).fetchone()
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

_ADMIN_DONGS_OF_LEGAL_DONG = """
    SELECT a.name, a.mois_code, a.kostat_code, a.district_code, d.name AS district_name,
           l.name AS legal_dong_name, l.code AS legal_dong_code
    FROM legal_dongs l
    JOIN admin_dongs a ON a.district_code = l.district_code AND ST_Intersects(a.geom_4326, l.geom_4326)
    JOIN districts d ON d.code = a.district_code
    WHERE l.name = %(name)s AND (%(district_code)s::text IS NULL OR l.district_code = %(district_code)s)
      AND ST_Area(ST_Intersection(a.geom_4326, l.geom_4326)::geography)
          >= %(share)s * LEAST(ST_Area(a.geom_4326::geography), ST_Area(l.geom_4326::geography))
    ORDER BY a.district_code, a.name, a.id"""


@dataclass(frozen=True)
class Area:
    """A resolved administrative area: a 구 (``districts``) or a 행정동 (``admin_dongs``)."""

    kind: Literal["district", "admin_dong"]
    key: str  # districts.code, or admin_dongs.id as text
    name: str
    district_code: str
    district_name: str
    mois_code: str | None = None
    kostat_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (without the internal key of dongs)."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "district_code": self.district_code,
                               "district_name": self.district_name}
        if self.kind == "admin_dong":
            out |= {"mois_code": self.mois_code, "kostat_code": self.kostat_code}
        return out


_DISTRICT_LOOKUP = "SELECT code, name FROM districts WHERE code = %(value)s OR name = %(value)s ORDER BY code"
_DONG_LOOKUP = """
    SELECT a.id, a.name, a.mois_code, a.kostat_code, a.district_code, d.name AS district_name
    FROM admin_dongs a JOIN districts d ON d.code = a.district_code
    WHERE (a.mois_code = %(value)s OR a.kostat_code = %(value)s OR a.name = %(value)s)
      AND (%(district_code)s::text IS NULL OR a.district_code = %(district_code)s)
    ORDER BY a.district_code, a.name, a.id"""


@dataclass(frozen=True)
class AreaRequest:
    """The steps of resolving an area; the same for sync and async callers (they only run the SQL)."""

    district: str | None
    dong: str | None

    @classmethod
    def of(cls, district: str | None, dong: str | None) -> AreaRequest:
        request = cls(clean_text(district, param="district"), clean_text(dong, param="dong"))
        if request.district is None and request.dong is None:
            raise InvalidQuery("give a district (구 code or name) or a dong (행정동 code or name)",
                               param="district,dong")
        return request

    def district_row(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise NotFound(f"no district (구) with code or name {self.district!r}", param="district",
                           value=self.district)
        if len(rows) > 1:
            raise InvalidQuery(f"district {self.district!r} is ambiguous; give its code", param="district",
                               candidates=[{"code": r["code"], "name": r["name"]} for r in rows])
        return rows[0]

    def district_area(self, row: dict[str, Any]) -> Area:
        return Area(kind="district", key=row["code"], name=row["name"], district_code=row["code"],
                    district_name=row["name"])

    def legal_params(self, district_row: dict[str, Any] | None) -> dict[str, Any]:
        return {"name": self.dong, "district_code": district_row["code"] if district_row else None,
                "share": LEGAL_DONG_OVERLAP_SHARE}

    def not_found(self, candidates: list[dict[str, Any]], district_row: dict[str, Any] | None) -> NotFound:
        """No 행정동 of that name; a 법정동 name (역삼동) lists the 행정동 it lies in (역삼1동, 역삼2동)."""
        where = f" in {district_row['name']}" if district_row else ""
        if candidates:
            names = ", ".join(sorted({f"{c['district_name']} {c['name']}" for c in candidates}))
            return NotFound(f"{self.dong!r} is a 법정동, not a 행정동{where}; it lies in the 행정동 {names}",
                            param="dong", value=self.dong, candidates=candidates)
        return NotFound(f"no 행정동 with code or name {self.dong!r}{where}", param="dong", value=self.dong)

    def dong_area(self, rows: list[dict[str, Any]], district_row: dict[str, Any] | None) -> Area:
        assert rows, "not_found handles a name without 행정동"
        if len(rows) > 1:
            raise InvalidQuery(
                f"dong {self.dong!r} is ambiguous; give its district or code", param="dong",
                candidates=[{"name": r["name"], "district_name": r["district_name"],
                             "district_code": r["district_code"], "mois_code": r["mois_code"],
                             "kostat_code": r["kostat_code"]} for r in rows],
            )
        r = rows[0]
        return Area(kind="admin_dong", key=str(r["id"]), name=r["name"], district_code=r["district_code"],
                    district_name=r["district_name"], mois_code=r["mois_code"], kostat_code=r["kostat_code"])

    def dong_params(self, district_row: dict[str, Any] | None) -> dict[str, Any]:
        return {"value": self.dong, "district_code": district_row["code"] if district_row else None}


def resolve_area(conn: Conn, *, district: str | None = None, dong: str | None = None) -> Area:
    """Find a 구 (``districts.code`` or ``name``) or a 행정동 (``admin_dongs.mois_code``, ``kostat_code`` or
    ``name``, narrowed to ``district`` when both are given).

    Raises
    ------
    InvalidQuery
        Neither given, or a name that matches several areas (``candidates`` lists them).
    NotFound
        Nothing of that code or name.
    """
    request = AreaRequest.of(district, dong)
    with driver_connection(conn).cursor(row_factory=dict_row) as cur:
        district_row = None
        if request.district is not None:
            district_row = request.district_row(cur.execute(_DISTRICT_LOOKUP, {"value": request.district}).fetchall())
            if request.dong is None:
                return request.district_area(district_row)
        rows = cur.execute(_DONG_LOOKUP, request.dong_params(district_row)).fetchall()
        if not rows:
            candidates = cur.execute(_ADMIN_DONGS_OF_LEGAL_DONG, request.legal_params(district_row)).fetchall()
            raise request.not_found(candidates, district_row)
    return request.dong_area(rows, district_row)


async def resolve_area_async(conn: AsyncConnection[Any], *, district: str | None = None,
                             dong: str | None = None) -> Area:
    """``resolve_area`` on a psycopg async connection."""
    request = AreaRequest.of(district, dong)
    async with conn.cursor(row_factory=dict_row) as cur:
        district_row = None
        if request.district is not None:
            await cur.execute(_DISTRICT_LOOKUP, {"value": request.district})
            district_row = request.district_row(await cur.fetchall())
            if request.dong is None:
                return request.district_area(district_row)
        await cur.execute(_DONG_LOOKUP, request.dong_params(district_row))
        rows = await cur.fetchall()
        if not rows:
            await cur.execute(_ADMIN_DONGS_OF_LEGAL_DONG, request.legal_params(district_row))
            raise request.not_found(await cur.fetchall(), district_row)
    return request.dong_area(rows, district_row)
