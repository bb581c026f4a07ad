"""Smoke test of benchmarks/bench_planner.py: it runs on one 구 and reports numbers (no timing assertions)."""

from __future__ import annotations

import math

from sqlalchemy import Engine

from benchmarks.bench_planner import MEASURES, load_inputs, run_benchmark


def test_benchmark_smoke(seoul_engine: Engine) -> None:
    inputs = load_inputs(seoul_engine, area_code="11440")  # 마포구
    assert len(inputs["children"]) > 100 and len(inputs["places"]) > 50
    result = run_benchmark(inputs, repeats=2)
    assert result["pairs"] > 0 and set(result["measures"]) == set(MEASURES)
    for measure in result["measures"].values():
        assert measure["max_abs_diff"] <= 1e-9
        for key in ("ours_from_table_s", "ours_end_to_end_s", "access_s", "ratio_same_cost_table",
                    "ratio_end_to_end"):
            assert all(math.isfinite(v) and v > 0 for v in measure[key].values())
