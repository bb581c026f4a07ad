"""Smoke test of ``benchmarks.bench_national`` at tiny sizes (광주 against 광주 + 대전): every part runs end to end
and reports numbers. No timing is asserted; what is checked is that the two sides are built as the benchmark
says (sizes, queues as long on both sides, the imported rows) and that every ratio is a finite positive number
equal to the median of its per-round ratios."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import bench_national


def test_every_part_runs_on_tiny_sizes(shared_data: Path, tmp_path: Path) -> None:
    small = bench_national.Size("small", 60, ("29",))
    large = bench_national.Size("large", 150, ("29", "30"))
    results = bench_national.run(small=small, large=large, applications=3_000, repeats=2, requests=8, warmup=2,
                                 import_repeats=2, shared_data=shared_data, work=tmp_path,
                                 database="national_smoke")
    assert results["import"]["rows"] == {"small": 60, "large": 150}
    data = results["data"]
    assert data["small"]["facilities"] == 60 and data["large"]["facilities"] == 150
    assert data["large"]["entries"] == 3_000
    per_small = data["small"]["entries"] / data["small"]["operating"]
    per_large = data["large"]["entries"] / data["large"]["operating"]
    assert per_small == per_large or abs(per_small / per_large - 1) < 0.05
    ratios = [results["import"]["large/small"]]
    for part, cases in (("search", bench_national.SEARCH_CASES), ("ranking", bench_national.RANKING_CASES)):
        assert set(results[part]["cases"]) == set(cases)
        for case in cases:
            entry = results[part]["cases"][case]
            assert entry["small_p50_ms"]["rounds"] == 2 and entry["large_p50_ms"]["median"] > 0
            ratios.append(entry["large/small"])
    for ratio in ratios:
        assert math.isfinite(ratio["median"]) and ratio["min"] <= ratio["median"] <= ratio["max"]
        assert ratio["min"] > 0
    text = bench_national.report(results)
    assert "import" in text and "rank_per_entry" in text and "area_dong" in text
