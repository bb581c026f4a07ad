"""Smoke test of ``benchmarks.bench_read``: every part runs end to end on a few requests and reports numbers.

No timing is asserted. What is checked against independent computations: the "sql" and "api" layers of the
latency part answer the same search (same features in the same order); the radius's bounding box for tipg touches
the circle (haversine); the synthetic scale set has the requested size, spread over 시군구 with the generator's
vocabularies; the statistics match numpy.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from benchmarks import bench_read
from geo.domain import FacilityStatus, FacilityType


def _finite_positive(summary: dict[str, Any], *keys: str) -> bool:
    return all(math.isfinite(summary[k]) and summary[k] > 0 for k in keys)


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * r * math.asin(math.sqrt(a))


def test_statistics_match_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.5]
    for q in (0.0, 0.25, 0.5, 0.99, 1.0):
        assert bench_read.quantile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))
    stats = bench_read.spread(values)
    assert (stats["min"], stats["max"], stats["rounds"]) == (1.0, 10.0, 7)
    assert stats["q1"] == pytest.approx(float(np.percentile(values, 25)))
    ratio = bench_read.ratio_spread([[2.0, 4.0, 6.0], [3.0]], [[1.0, 2.0, 3.0], [1.0]])
    assert (ratio["min"], ratio["max"], ratio["median"]) == (2.0, 3.0, 2.5)


def test_radius_bbox_touches_the_circle() -> None:
    lat, lon = 37.5563, 126.9220
    min_lon, min_lat, max_lon, max_lat = bench_read.radius_bbox(lat, lon, 1000.0)
    for edge_lat, edge_lon in ((max_lat, lon), (min_lat, lon), (lat, max_lon), (lat, min_lon)):
        assert _haversine_m(lat, lon, edge_lat, edge_lon) == pytest.approx(1000.0, rel=0.005)


@pytest.mark.slow
def test_latency_sql_and_api_answer_the_same_search(seoul_engine: Engine) -> None:
    with bench_read.serve_dolbom(seoul_engine) as server, bench_read.sql_connection(seoul_engine) as conn:
        client = bench_read.KeepAliveClient(server)
        try:
            for case in bench_read.LATENCY_CASES:
                request = bench_read.case_requests(seoul_engine, case, 1)[0]
                with conn.cursor() as cur:
                    features_json, fetched = cur.execute(request.statement.page_sql,
                                                         request.statement.params).fetchone()
                api = json.loads(client.get(request.path))
                sql = json.loads(features_json)
                assert sql and [f["id"] for f in api["features"]] == [f["id"] for f in sql], case
                assert api["numberReturned"] == min(fetched, request.statement.limit)
        finally:
            client.close()


@pytest.mark.slow
def test_latency_with_a_baseline_server_interleaves_three_ways(seoul_engine: Engine) -> None:
    latency = bench_read.latency(seoul_engine, repeats=2, requests=3, warmup=1, cases=("nearest",),
                                 baseline_env={"DOLBOM_SEARCH_FAST_PATH": "false"})
    case = latency["cases"]["nearest"]
    assert latency["baseline"] == {"dir": None, "env": {"DOLBOM_SEARCH_FAST_PATH": "false"}}
    assert case["base"]["n"] == case["api"]["n"] == case["sql"]["n"] == 6
    assert _finite_positive(case["api/base_p50"], "min", "max") and _finite_positive(case["base/sql_p50"], "min")
    assert "api/base" in bench_read.report({"latency": latency})


@pytest.mark.slow
def test_bench_read_parts_smoke(seoul_engine: Engine, make_database: Any) -> None:
    latency = bench_read.latency(seoul_engine, repeats=2, requests=3, warmup=1)
    assert set(latency["cases"]) == set(bench_read.LATENCY_CASES)
    for case in latency["cases"].values():
        for layer in ("sql", "api"):
            assert case[layer]["n"] == 6 and _finite_positive(case[layer], "p50_ms", "p99_ms")
        assert case["api/sql_p50"]["rounds"] == 2 and _finite_positive(case["api/sql_p50"], "min", "max")
        assert case["mean_returned"] > 0

    # tipg needs its own virtualenv (pip): the suite drives the load generator against dolbom only.
    load = bench_read.throughput(seoul_engine, concurrency=(2,), repeats=1, duration_s=0.3, max_requests=10,
                                 warmup_s=0.1, points=4, targets=("dolbom",))
    dolbom = load["concurrency"]["2"]["dolbom"]
    assert 0 < dolbom["requests"] <= 10 and dolbom["rps"]["median"] > 0
    assert dolbom["server_cpu_ms_per_request"]["median"] >= 0 and load["first_page_features"]["dolbom"] > 0

    large = make_database("bench_scale")
    bench_read.load_synthetic(large, size=600)
    with large.connect() as conn:
        total, districts, per_district, statuses, types = conn.execute(text("""
            SELECT count(*), count(DISTINCT district_code), max(n), array_agg(DISTINCT status),
                   array_agg(DISTINCT facility_type)
            FROM (SELECT *, count(*) OVER (PARTITION BY district_code) AS n FROM facilities) f""")).one()
    per = math.ceil(600 * 1.02 / 253) + 1  # at most as many in every 시군구, a random ``size`` of them kept
    assert total == 600 and per_district <= per and districts >= 600 / per
    assert set(statuses) <= {s.value for s in FacilityStatus} and set(types) <= {t.value for t in FacilityType}
    result = bench_read.scale(seoul_engine, large, repeats=1, requests=3, warmup=1)
    assert result["counts"]["large"]["facilities"] == 600
    for case in bench_read.SCALE_CASES:
        entry = result["cases"][case]
        assert _finite_positive(entry["large/small_api_p50"], "median")
        assert entry["large_api"]["n"] == 3 and entry["small_sql"]["n"] == 3
