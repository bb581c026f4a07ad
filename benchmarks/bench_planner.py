"""Planner accessibility: dolbom's 2SFCA / E2SFCA against PySAL ``access`` on full Seoul, 250 m grid.

Run ``python -m benchmarks.bench_planner`` (see benchmarks/README.md). Inputs are built once: the Seoul grid
cells with their children (``geo.analysis.demand``) and the operating centres with their places, from a
throw-away database with Seoul boundaries + the OA-20300 2026-07-21 snapshot (or ``--url`` for an imported
database). Then, ``--repeats`` times, interleaved (ours, ours, access, ours, ours, access, ...):

- ``access``: ``access.Access`` built from the demand, the supply and a cost table of every pair within the
  catchment (made beforehand by brute force, not timed) + ``two_stage_fca`` / ``enhanced_two_stage_fca``;
- ``ours_from_table``: ``two_step_fca`` / ``enhanced_two_step_fca`` on the same cost table (the same inputs);
- ``ours_end_to_end``: ``pairs_within`` (our neighbour search from the coordinates) + the same: all the work
  from points to scores, against ``access`` still given its cost table for free.

Reported per measure: median and spread (min-max) of the seconds, the per-repeat ratios access / ours
(``ratio_same_cost_table``, ``ratio_end_to_end``) and the largest difference between the results (<= 1e-9). Written to
``benchmarks/results/bench_planner-<UTC timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from benchmarks.bench_read import RESULTS_DIR, load_seoul, throwaway_database
from benchmarks.harness import spread
from geo.analysis import accessibility as acc
from geo.analysis.demand import grid_cells, grid_pieces
from geo.analysis.planner import centres
from geo.db import check_database, make_engine
from geo.settings import PROJECT_ROOT

MEASURES = ("2sfca", "e2sfca")


def load_inputs(engine: Engine, *, cell_m: float = 250.0, area_code: str = "11") -> dict[str, np.ndarray]:
    """Demand points/children (grid cells) and supply points/places (operating centres) in EPSG:5179, for
    Seoul (11) or one 구 (e.g. 11440)."""
    with engine.connect() as conn:
        cells = grid_cells(grid_pieces(conn, area_code=area_code, cell_m=cell_m))
        supply = centres(conn, area_code=area_code)
    return {"demand_xy": cells[["x_5179", "y_5179"]].to_numpy(), "children": cells["children"].to_numpy(),
            "supply_xy": supply[["x_5179", "y_5179"]].to_numpy(),
            "places": supply["places"].to_numpy(dtype=float)}


def _ours(inputs: dict[str, np.ndarray], measure: str, catchment_m: float, pairs: acc.Pairs | None = None
          ) -> np.ndarray:
    """Our scores; with ``pairs`` None the neighbour search from the coordinates is part of the work."""
    if pairs is None:
        pairs = acc.pairs_within(inputs["demand_xy"], inputs["supply_xy"], max_distance_m=catchment_m)
    if measure == "2sfca":
        return acc.two_step_fca(pairs, inputs["children"], inputs["places"], catchment_m=catchment_m)
    return acc.enhanced_two_step_fca(pairs, inputs["children"], inputs["places"], catchment_m=catchment_m)


def _cost_table(inputs: dict[str, np.ndarray], catchment_m: float) -> pd.DataFrame:
    """Every demand/supply pair within the catchment, by brute force in chunks (independent of the KD-tree)."""
    dxy, sxy = inputs["demand_xy"], inputs["supply_xy"]
    frames = []
    for start in range(0, len(dxy), 2000):
        block = dxy[start:start + 2000]
        d = np.hypot(block[:, None, 0] - sxy[None, :, 0], block[:, None, 1] - sxy[None, :, 1])
        i, j = np.nonzero(d <= catchment_m)
        frames.append(pd.DataFrame({"origin": i + start, "dest": j, "cost": d[i, j]}))
    return pd.concat(frames, ignore_index=True)


def _access(inputs: dict[str, np.ndarray], cost: pd.DataFrame, measure: str, catchment_m: float) -> np.ndarray:
    from access import Access
    from access import weights as access_weights

    n = len(inputs["children"])
    demand_df = pd.DataFrame({"children": inputs["children"]}, index=pd.Index(range(n), name="geoid"))
    supply_df = pd.DataFrame({"places": inputs["places"]}, index=pd.Index(range(len(inputs["places"])), name="geoid"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Access(demand_df=demand_df, demand_value="children", supply_df=supply_df, supply_value="places",
                       cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="cost")
        if measure == "2sfca":
            out = model.two_stage_fca(name="a", max_cost=catchment_m)["a_places"]
        else:
            step = access_weights.step_fn(dict(zip(acc.default_zones_m(catchment_m), acc.DEFAULT_ZONE_WEIGHTS,
                                                   strict=True)))
            out = model.enhanced_two_stage_fca(name="a", max_cost=catchment_m, weight_fn=step)["a_places"]
    return out.reindex(range(n)).fillna(0.0).to_numpy()


def run_benchmark(inputs: dict[str, np.ndarray], *, repeats: int = 5, catchment_m: float = 1000.0) -> dict[str, Any]:
    """Time both implementations ``repeats`` times, interleaved, and compare their results."""
    cost = _cost_table(inputs, catchment_m)
    out: dict[str, Any] = {"cells": len(inputs["children"]), "centres": len(inputs["places"]), "pairs": len(cost),
                           "catchment_m": catchment_m, "repeats": repeats, "measures": {}}
    table_pairs = acc.Pairs(cost["origin"].to_numpy(np.intp), cost["dest"].to_numpy(np.intp),
                            cost["cost"].to_numpy(float))
    for measure in MEASURES:
        _ours(inputs, measure, catchment_m)  # warm-up (imports, caches)
        times: dict[str, list[float]] = {"ours_from_table": [], "ours_end_to_end": [], "access": []}
        diff = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            from_table = _ours(inputs, measure, catchment_m, table_pairs)
            t1 = time.perf_counter()
            mine = _ours(inputs, measure, catchment_m)
            t2 = time.perf_counter()
            ref = _access(inputs, cost, measure, catchment_m)
            t3 = time.perf_counter()
            times["ours_from_table"].append(t1 - t0)
            times["ours_end_to_end"].append(t2 - t1)
            times["access"].append(t3 - t2)
            finite = np.isfinite(ref)
            for got in (from_table, mine):
                diff = max(diff, float(np.abs(got[finite] - ref[finite]).max()) if finite.any() else 0.0)
        access_s = times["access"]
        out["measures"][measure] = {
            **{f"{k}_s": spread(v) for k, v in times.items()},
            # Per repeat: access time over ours in the same repeat.
            "ratio_same_cost_table": spread([a / o for a, o in zip(access_s, times["ours_from_table"], strict=True)]),
            "ratio_end_to_end": spread([a / o for a, o in zip(access_s, times["ours_end_to_end"], strict=True)]),
            "max_abs_diff": diff}
    return out


def _print(result: dict[str, Any]) -> None:
    print(f"{result['cells']} cells, {result['centres']} centres, {result['pairs']} pairs within "
          f"{result['catchment_m']:g} m, {result['repeats']} repeats; seconds and ratios as median (min-max)")
    for name, m in result["measures"].items():
        cells = [f"{k.removesuffix('_s')} {v['median']:.4f} s ({v['min']:.4f}-{v['max']:.4f})"
                 for k, v in m.items() if k.endswith("_s")]
        ratios = [f"{k.removeprefix('ratio_')} {v['median']:.1f}x ({v['min']:.1f}-{v['max']:.1f})"
                  for k, v in m.items() if k.startswith("ratio_")]
        print(f"{name}: " + "; ".join(cells))
        print(f"{name}: access / ours: " + "; ".join(ratios) + f"; max |diff| {m['max_abs_diff']:.1e}")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing database with Seoul imported (default: a throw-away one)")
    parser.add_argument("--shared-data", type=Path, default=Path(os.environ.get(
        "DOLBOM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--catchment-m", type=float, default=1000.0)
    parser.add_argument("--keep", action="store_true", help="keep and reuse the throw-away database")
    args = parser.parse_args()
    if args.url:
        engine = make_engine(args.url)
        inputs = load_inputs(engine)
        versions = check_database(engine)
    else:
        with throwaway_database("planner", keep=args.keep) as (engine, filled):
            if not filled:
                load_seoul(engine, args.shared_data)
            inputs = load_inputs(engine)
            versions = check_database(engine)
    result = run_benchmark(inputs, repeats=args.repeats, catchment_m=args.catchment_m)
    result.update(versions=versions, python=platform.python_version(), machine=platform.machine())
    _print(result)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench_planner-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
