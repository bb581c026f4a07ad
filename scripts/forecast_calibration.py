#!/usr/bin/env python3
"""Back-test the wait forecast on simulated histories and put the calibration table into
docs/waitlist-forecast.md (between the calibration markers).

    .venv/bin/python scripts/forecast_calibration.py            # print the table
    .venv/bin/python scripts/forecast_calibration.py --write    # replace it in docs/waitlist-forecast.md

The scenarios, the simulator and the comparison are ``geo.admission.forecast_backtest``; same seed, same table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.admission.forecast_backtest import SCENARIOS, calibrate, calibration_table, simulate_scenario  # noqa: E402

DOC = ROOT / "docs" / "waitlist-forecast.md"
BEGIN = "<!-- forecast-calibration: begin (scripts/forecast_calibration.py --write) -->"
END = "<!-- forecast-calibration: end -->"
SEED = 2026


def table() -> str:
    """The calibration table of every scenario, with the seed and sizes it was made with."""
    results = []
    for k, scenario in enumerate(SCENARIOS):
        districts = simulate_scenario(scenario, seed=SEED + k)
        results.append((scenario.name, calibrate(districts, entries_per_pool=scenario.entries_per_pool,
                                                 seed=SEED + k)))
    sizes = ", ".join(f"{s.districts} districts × {s.pools_per_district} pools" for s in SCENARIOS[:1])
    return (f"{calibration_table(results)}\n\nSeed {SEED}; per scenario {sizes}, up to 8 entries per pool at ranks "
            "spread over the queue, forecast with 2,000 draws. Binomial interval: Clopper-Pearson, as if entries were "
            "independent; pools resampled: a bootstrap over pools (2,000 resamples), since the entries of one pool "
            "share its rates.")


def main() -> None:
    """Print the table or write it into the docs page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in docs/waitlist-forecast.md")
    args = parser.parse_args()
    block = table()
    if not args.write:
        print(block)
        return
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")
    print(f"wrote the calibration table into {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
