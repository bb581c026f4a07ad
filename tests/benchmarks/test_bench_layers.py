"""Smoke test of benchmarks/bench_layers: tiny counts, both servers, every workload measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from benchmarks import bench_layers
from geo.settings import PROJECT_ROOT, Settings


@pytest.mark.slow
def test_bench_layers_runs_against_tipg(settings: Settings, seoul_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "bench_layers.json"
    code = bench_layers.main(["--url", settings.effective_database_url, "--requests", "8", "--rounds", "1",
                              "--clients", "2", "--base-tree", str(PROJECT_ROOT), "--output", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {(r["workload"], r["clients"]): r for r in report["results"]}
    assert set(rows) == {(w, 2) for w in bench_layers.WORKLOADS}
    for row in rows.values():
        assert row["dolbom_rps_median"] > 0 and row["tipg_rps_median"] > 0
        assert row["ratio_median"] == pytest.approx(row["dolbom_rps_median"] / row["tipg_rps_median"])
        # --base-tree: a third API (here this same tree) in the same rounds, its ratio reported per workload
        assert row["base_rps_median"] > 0 and row["dolbom_vs_base"]["min"] <= row["dolbom_vs_base"]["max"]
