"""Smoke test of benchmarks/bench_vacancy.py: a few clients and rounds produce numbers (no timing asserts)."""

from __future__ import annotations

from benchmarks.bench_vacancy import run_benchmark


def test_bench_vacancy_smoke(make_database) -> None:
    engine = make_database("bench_vacancy")
    result = run_benchmark(engine, clients=20, rounds=4, blocks=2, workers=2, client_processes=2, timeout_s=120)
    assert result["notify"]["n"] == 4
    assert result["report"]["n"] == 4 * 20  # every client received every event
    assert result["ratio_p50"] > 0 and len(result["ratio_p50_by_block"]) == 2
    assert result["reconnects"] == 0 and result["workers"] == 2
