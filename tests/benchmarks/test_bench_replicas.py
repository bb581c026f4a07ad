"""Smoke test of ``benchmarks.bench_replicas`` on a few requests: no timing asserted; checked is that each variant
was served where it claims (no read router without replicas, the standby with and without a replayed position)
and that every figure is there."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import bench_replicas


def test_bench_replicas_runs_each_variant_where_it_says(shared_data: Path) -> None:
    result = bench_replicas.run(port=55440, shared_data=shared_data, repeats=2, requests=6, warmup=2)
    assert result["read_sources"] == {"primary": [""], "replica": ["replica-1"], "replica+lsn": ["replica-1"]}
    for variant in bench_replicas.VARIANTS:
        summary = result["latency"][variant]
        assert summary["n"] == 12 and math.isfinite(summary["p50_ms"]) and summary["p50_ms"] > 0
    for ratio in ("replica/primary_p50", "replica+lsn/primary_p50", "replica/primary_p99"):
        assert result[ratio]["rounds"] == 2 and math.isfinite(result[ratio]["median"]) and result[ratio]["min"] > 0
    assert not Path("/tmp/dolbom-replicas-bench-55440").exists()
