"""Smoke test of ``benchmarks.bench_apply_burst``: both shapes end to end on a few applications (scratch
database, one uvicorn worker); the report's structure and statuses are checked, no time is asserted."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_apply_burst
from geo.settings import Settings


@pytest.mark.slow
def test_bench_apply_burst_smoke(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_apply_burst.main(["--applications", "20"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["shape"], r["applications"], r["centres"]) for r in lines] == [("one", 20, 1), ("spread", 20, 2)]
    for report in lines:
        for run in ("baseline", "burst"):
            assert report[run]["counts"] == {"201": 20}
            assert report[run]["health_failures"] == 0
        assert report["burst_over_baseline"] > 0


@pytest.mark.slow
def test_bench_apply_burst_log_cost_smoke(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_apply_burst.main(["--applications", "10", "--shapes", "one", "--log-cost", "1"]) == 0
    (report,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (report["shape"], report["rounds"]) == ("one", 1)
    for mode in ("off", "on"):
        (run,) = report[mode]
        assert run["baseline"]["counts"] == run["burst"]["counts"] == {"201": 10}
    assert len(report["sequential_on_over_off"]) == len(report["burst_on_over_off"]) == 1
