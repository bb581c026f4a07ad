"""Smoke test of benchmarks/bench_first_load: one round of every variant in chromium, every measure there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from benchmarks import bench_first_load
from geo.settings import Settings


@pytest.mark.slow
def test_bench_first_load_measures_every_variant(settings: Settings, seoul_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "bench_first_load.json"
    code = bench_first_load.main(["--url", settings.effective_database_url, "--rounds", "1", "--output", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    for name in bench_first_load.VARIANTS:
        for measure in bench_first_load.MEASURES + bench_first_load.TIMELINE:
            assert report["variants"][name][measure]["median"] > 0, (name, measure)
        load = report["loads"][name][0]
        # The first list request starts after navigation and ends before the first markers are drawn.
        assert 0 < load["list_request_ms"] < load["list_response_ms"] <= load["first_marker_ms"], name
    for top, bottom in bench_first_load.RATIOS:
        a, b = report["loads"][top][0], report["loads"][bottom][0]
        for measure in bench_first_load.MEASURES:
            assert report["ratios"][f"{top}/{bottom}"][measure]["median"] == pytest.approx(a[measure] / b[measure])
    # Not a timing: compressed answers and the marker list are fewer bytes, whatever the machine.
    assert report["loads"]["after"][0]["bytes"] < report["loads"]["before"][0]["bytes"]
