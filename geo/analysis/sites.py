"""Site suggestions: where K new centres of a service type would cover the most unserved children.

The maximal covering location problem (MCLP, Church & ReVelle 1974), solved exactly as a mixed-integer
programme with HiGHS (``scipy.optimize.milp``)::

    maximise    sum_i a_i y_i
    subject to  y_i <= sum_{j in N_i} x_j     (a demand cell counts as covered only if a chosen site reaches it)
                sum_j x_j = K
                x_j in {0, 1}, 0 <= y_i <= 1

with ``a_i`` the unserved children of grid cell ``i`` (no centre of the service within ``coverage_m``),
``N_i`` the candidate sites within ``coverage_m`` of it. Candidate sites are the demand points of grid cells
within reach of some unserved child; on a whole city the ``max_candidates`` best of them alone (default 400)
keep the programme small enough to solve to proven optimality in seconds. Demand cells reached by the same
candidates are merged into one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, hstack, identity

from geo.analysis import accessibility as acc
from geo.analysis.planner import PlannerResult
from geo.errors import InvalidQuery


@dataclass(frozen=True)
class Coverage:
    """The solution of a covering problem: chosen candidate indices, covered demand indices, objective."""

    chosen: NDArray[np.intp]
    covered: NDArray[np.bool_]
    covered_weight: float
    optimal: bool


def maximal_covering(demand_xy: NDArray[np.float64], weights: NDArray[np.float64],
                     candidate_xy: NDArray[np.float64], *, k: int, coverage_m: float,
                     time_limit_s: float = 60.0) -> Coverage:
    """Choose ``k`` candidates maximising the weight of demand points within ``coverage_m`` of a chosen one.

    Parameters
    ----------
    demand_xy, candidate_xy : (n, 2) coordinates in metres (EPSG:5179).
    weights : weight (children) per demand point.
    k : number of sites to choose (at most the number of candidates).
    coverage_m : coverage radius in metres (a point exactly at the radius is covered).
    time_limit_s : HiGHS time limit; ``optimal`` is False when it stopped before proving optimality.
    """
    weights = np.asarray(weights, dtype=float)
    n_dem, n_cand = len(weights), len(candidate_xy)
    if k < 1:
        raise InvalidQuery(f"k must be at least 1, not {k}", param="k")
    if k > n_cand:
        raise InvalidQuery(f"k={k} is more than the {n_cand} candidate sites", param="k")
    pairs = acc.pairs_within(demand_xy, candidate_xy, max_distance_m=coverage_m)
    # Demand points reached by the same candidates are one row of the programme (weights added): same optimum,
    # far fewer rows on a fine grid. Points no candidate reaches cannot be covered and are left out.
    order = np.lexsort((pairs.supply, pairs.demand))
    dem, sup = pairs.demand[order], pairs.supply[order]
    groups: dict[tuple[int, ...], int] = {}
    row_of = np.full(n_dem, -1, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, dem[1:] != dem[:-1]]) if len(dem) else np.empty(0, dtype=np.intp)
    bounds_ = np.r_[starts, len(dem)]
    row_cands: list[tuple[int, ...]] = []
    for a, b in zip(bounds_[:-1], bounds_[1:], strict=True):
        signature = tuple(sup[a:b].tolist())
        row = groups.setdefault(signature, len(groups))
        if row == len(row_cands):
            row_cands.append(signature)
        row_of[dem[a]] = row
    n_rows = len(row_cands)
    row_weight = np.bincount(row_of[row_of >= 0], weights=weights[row_of >= 0], minlength=n_rows)
    r_idx = np.repeat(np.arange(n_rows), [len(c) for c in row_cands])
    c_idx = np.fromiter((j for c in row_cands for j in c), dtype=np.intp, count=len(r_idx))
    # Variables: x_0..x_{n_cand-1}, then y_0..y_{n_rows-1}.
    c = np.concatenate([np.zeros(n_cand), -row_weight])
    # y_r - sum_{j in N_r} x_j <= 0
    a_cover = coo_matrix((-np.ones(len(r_idx)), (r_idx, c_idx)), shape=(n_rows, n_cand)).tocsr()
    a_rows = hstack([a_cover, identity(n_rows, format="csr")]).tocsr()
    a_k = coo_matrix((np.ones(n_cand), (np.zeros(n_cand, dtype=int), np.arange(n_cand))),
                     shape=(1, n_cand + n_rows)).tocsr()
    constraints = [LinearConstraint(a_rows, -np.inf, 0.0), LinearConstraint(a_k, k, k)]
    integrality = np.concatenate([np.ones(n_cand), np.zeros(n_rows)])
    res = milp(c, constraints=constraints, integrality=integrality, bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": 0.0})
    if res.x is None:
        raise InvalidQuery(f"the covering problem could not be solved in {time_limit_s:g} s: {res.message}; "
                           "try fewer candidates or a longer time limit", param="k")
    x = np.round(res.x[:n_cand]).astype(int)
    chosen = np.flatnonzero(x == 1)
    covered = np.zeros(n_dem, dtype=bool)
    hit = np.isin(pairs.supply, chosen)
    covered[pairs.demand[hit]] = True
    return Coverage(chosen, covered, float(weights[covered].sum()), bool(res.status == 0))


def suggest_sites(result: PlannerResult, *, k: int, coverage_m: float | None = None,
                  max_candidates: int | None = 400, time_limit_s: float = 60.0) -> gpd.GeoDataFrame:
    """``k`` new centre sites for the run's service type covering the most unserved children.

    Unserved: children of cells with no centre of the service within ``coverage_m`` (default: the run's
    catchment). Candidates: the ``max_candidates`` cells that alone would cover the most unserved children
    (None: every cell within reach of one); the optimum is exact over them. Returns one row per site
    (EPSG:4326 points) in the order of the children each newly covers
    (``children_newly_covered``: the unserved children it covers that no earlier site in the list covers);
    ``children_covered_total`` is the optimum. ``optimal`` says whether HiGHS proved optimality.
    """
    coverage = coverage_m if coverage_m is not None else result.params.catchment_m
    if coverage <= 0:
        raise InvalidQuery("coverage_m must be positive", param="coverage_m")
    cells = result.cells
    unserved = (cells["nearest_m"].to_numpy() > coverage) & (cells["children"].to_numpy() > 0)
    demand = cells[unserved]
    demand_xy = demand[["x_5179", "y_5179"]].to_numpy()
    all_xy = cells[["x_5179", "y_5179"]].to_numpy()
    # Only cells within reach of some unserved child can help.
    reach = acc.pairs_within(all_xy, demand_xy, max_distance_m=coverage) if len(demand) else None
    cand_idx = np.unique(reach.demand) if reach is not None else np.empty(0, dtype=np.intp)
    columns = ["rank", "cell_id", "district_code", "admin_dong_id", "children_newly_covered",
               "children_covered_total", "unserved_children", "optimal", "geometry"]
    if len(cand_idx) == 0:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry="geometry", crs=4326)
    if reach is not None and max_candidates is not None and len(cand_idx) > max_candidates:
        # Keep the cells that alone would cover the most unserved children (the programme is exact over these).
        alone = np.bincount(reach.demand, weights=demand["children"].to_numpy()[reach.supply], minlength=len(cells))
        cand_idx = cand_idx[np.argsort(-alone[cand_idx], kind="stable")[:max_candidates]]
        cand_idx.sort()
    candidates = cells.iloc[cand_idx]
    k_eff = min(k, len(candidates))
    sol = maximal_covering(demand_xy, demand["children"].to_numpy(), candidates[["x_5179", "y_5179"]].to_numpy(),
                           k=k_eff, coverage_m=coverage, time_limit_s=time_limit_s)
    pairs = acc.pairs_within(demand_xy, candidates[["x_5179", "y_5179"]].to_numpy(), max_distance_m=coverage)
    weights = demand["children"].to_numpy()
    remaining = set(sol.chosen.tolist())
    taken = np.zeros(len(demand), dtype=bool)
    rows = []
    while remaining:
        gains = {}
        for j in remaining:
            idx = pairs.demand[pairs.supply == j]
            gains[j] = float(weights[idx][~taken[idx]].sum())
        best = max(gains, key=lambda j: (gains[j], -j))
        idx = pairs.demand[pairs.supply == best]
        taken[idx] = True
        remaining.discard(best)
        site = candidates.iloc[best]
        rows.append({"cell_id": site["cell_id"], "district_code": site["district_code"],
                     "admin_dong_id": site["admin_dong_id"], "children_newly_covered": gains[best],
                     "x_5179": site["x_5179"], "y_5179": site["y_5179"]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame["children_covered_total"] = sol.covered_weight
    frame["unserved_children"] = float(weights.sum())
    frame["optimal"] = sol.optimal
    points = gpd.points_from_xy(frame.pop("x_5179"), frame.pop("y_5179"), crs=5179)
    return gpd.GeoDataFrame(frame, geometry=points).to_crs(4326)[columns]
