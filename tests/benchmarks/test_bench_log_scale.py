"""Smoke test of ``benchmarks.bench_log_scale`` on one 구 (마포구) of the real data: the seeded log verifies, a
moved application time is named, and the rebuild from the log alone equals the live tables. No timing is
asserted."""

from __future__ import annotations

from sqlalchemy import Connection

from benchmarks import bench_log_scale


def test_bench_log_scale_smoke(conn: Connection) -> None:
    result = bench_log_scale.measure(conn, area="11440", applicant_rate=0.05, seed=3)
    assert result["rebuild_equals_live"] and result["applications"] > 50
    assert result["log_events"] > result["applications"]
    assert set(result["timings_s"]) == {"seed", "verify", "verify after a tamper",
                                        "rebuild from the log (its verify included)"}
