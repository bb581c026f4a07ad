"""Smoke test of benchmarks/bench_first_load: one round of both variants in chromium, every measure there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from benchmarks import bench_first_load
from geo.settings import Settings


@pytest.mark.slow
def test_bench_first_load_measures_both_variants(settings: Settings, seoul_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "bench_first_load.json"
    code = bench_first_load.main(["--url", settings.effective_database_url, "--rounds", "1", "--output", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    for name in bench_first_load.VARIANTS:
        for measure in bench_first_load.MEASURES:
            assert report["variants"][name][measure]["median"] > 0, (name, measure)
    before, after = report["loads"]["before"][0], report["loads"]["after"][0]
    for measure in bench_first_load.MEASURES:
        assert report["ratios"][measure]["median"] == pytest.approx(after[measure] / before[measure])
    # Not a timing: compressed answers and the marker list are fewer bytes, whatever the machine.
    assert after["bytes"] < before["bytes"]
