"""Site suggestions: where K new centres of a service type would cover the most unserved children.

The maximal covering location problem (MCLP, Church & ReVelle 1974), solved exactly as a mixed-integer
programme with HiGHS (``scipy.optimize.milp``)::

    maximise    sum_i a_i y_i
    subject to  y_i <= sum_{j in N_i} x_j     (a demand cell counts as covered only if a chosen site reaches it)
                sum_j x_j = K
                x_j in {0, 1}, 0 <= y_i <= 1

with ``a_i`` the unserved children of grid cell ``i`` (no centre of the service within ``coverage_m``),
``N_i`` the candidate sites within ``coverage_m`` of it. Candidate sites are the demand points of every grid
cell within reach of some unserved child (Seoul at 1 km: about 10,000, proven optimal by HiGHS in about a
second; demand cells reached by the same candidates are merged into one row). ``optimal`` is claimed only when
proven over all of them; otherwise (HiGHS stopped by its time limit, or a shortlist of candidates) an upper
bound, HiGHS's dual bound or the Lagrangian relaxation of the coverage rows, says how far at most the sites
fall short.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix, hstack, identity

from geo.analysis import accessibility as acc
from geo.analysis.planner import PlannerResult
from geo.errors import InvalidQuery


@dataclass(frozen=True)
class Coverage:
    """The solution of a covering problem: chosen candidate indices, covered demand indices, objective, and an
    upper bound on the weight any ``k`` of the candidates can cover (equal to ``covered_weight`` when
    ``optimal``)."""

    chosen: NDArray[np.intp]
    covered: NDArray[np.bool_]
    covered_weight: float
    optimal: bool
    upper_bound: float


@dataclass(frozen=True)
class _Programme:
    """The MCLP as matrices: variables x_0..x_{n_cand-1}, then one y per distinct demand row."""

    pairs: acc.Pairs
    c: NDArray[np.float64]
    constraints: list[LinearConstraint]
    n_cand: int
    n_rows: int
    # Which candidates reach which demand row (n_rows x n_cand, ones), and the children of each row.
    reach: csr_matrix
    row_weight: NDArray[np.float64]


def _programme(demand_xy: NDArray[np.float64], weights: NDArray[np.float64], candidate_xy: NDArray[np.float64],
               *, k: int, coverage_m: float) -> _Programme:
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
    c = np.concatenate([np.zeros(n_cand), -row_weight])
    # y_r - sum_{j in N_r} x_j <= 0
    a_cover = coo_matrix((-np.ones(len(r_idx)), (r_idx, c_idx)), shape=(n_rows, n_cand)).tocsr()
    a_rows = hstack([a_cover, identity(n_rows, format="csr")]).tocsr()
    a_k = coo_matrix((np.ones(n_cand), (np.zeros(n_cand, dtype=int), np.arange(n_cand))),
                     shape=(1, n_cand + n_rows)).tocsr()
    constraints = [LinearConstraint(a_rows, -np.inf, 0.0), LinearConstraint(a_k, k, k)]
    return _Programme(pairs, c, constraints, n_cand, n_rows, -a_cover, np.asarray(row_weight, dtype=np.float64))


def _greedy(prog: _Programme, k: int) -> NDArray[np.intp]:
    """k candidates chosen one at a time by the children they newly cover (within 1 - 1/e of the optimum)."""
    uncovered = prog.row_weight.copy()
    reach_t = prog.reach.T.tocsr()
    chosen: list[int] = []
    for _ in range(k):
        gain = reach_t @ uncovered
        gain[chosen] = -1.0
        best = int(np.argmax(gain))
        chosen.append(best)
        uncovered[prog.reach[:, best].nonzero()[0]] = 0.0
    return np.array(sorted(chosen), dtype=np.intp)


def _lagrangian_bound(prog: _Programme, k: int, *, lower: float, iterations: int = 300) -> float:
    """An upper bound on what any k candidates cover: the Lagrangian relaxation of ``y_r <= sum x_j``.

    For any multipliers ``lam >= 0``, ``sum_r max(0, w_r - lam_r) + (sum of the k largest (A^T lam)_j)`` bounds
    the optimum; subgradient steps (Polyak, towards ``lower``, the best cover known) make it tight, in about
    a second on a whole city where the LP relaxation takes minutes.
    """
    w, a = prog.row_weight, prog.reach
    a_t = a.T.tocsr()
    k = min(k, prog.n_cand)
    lam = w.copy()  # the bound of the k candidates covering most alone
    best = float(w.sum())
    scale, stale = 2.0, 0
    for _ in range(iterations):
        v = a_t @ lam
        top = np.argpartition(-v, k - 1)[:k]
        value = float(np.maximum(w - lam, 0.0).sum() + v[top].sum())
        if value < best - 1e-9:
            best, stale = value, 0
        else:
            stale += 1
            if stale >= 10:
                scale, stale = scale / 2, 0
        x = np.zeros(prog.n_cand)
        x[top] = 1.0
        g = a @ x - (w > lam)
        norm = float(g @ g)
        if norm == 0 or best - lower <= 1e-9 * max(1.0, best) or scale < 1e-6:
            break
        lam = np.maximum(lam - scale * (value - lower) / norm * g, 0.0)
    return max(best, lower)


def covering_bound(demand_xy: NDArray[np.float64], weights: NDArray[np.float64],
                   candidate_xy: NDArray[np.float64], *, k: int, coverage_m: float,
                   lower: float | None = None) -> float:
    """An upper bound on the weight any ``k`` candidates cover (the Lagrangian relaxation; ``lower``: the best
    cover known, by default the greedy one's, steers the subgradient steps)."""
    weights = np.asarray(weights, dtype=float)
    prog = _programme(demand_xy, weights, candidate_xy, k=k, coverage_m=coverage_m)
    if lower is None:
        lower = _covered_weight(prog, weights, _greedy(prog, k))
    return _lagrangian_bound(prog, k, lower=lower)


def _covered(prog: _Programme, n_dem: int, chosen: NDArray[np.intp]) -> NDArray[np.bool_]:
    covered = np.zeros(n_dem, dtype=bool)
    covered[prog.pairs.demand[np.isin(prog.pairs.supply, chosen)]] = True
    return covered


def _covered_weight(prog: _Programme, weights: NDArray[np.float64], chosen: NDArray[np.intp]) -> float:
    return float(weights[_covered(prog, len(weights), chosen)].sum())


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
    time_limit_s : HiGHS time limit. When it stops first, the sites are the better of its best solution and
        the greedy one, and ``upper_bound`` the lower of HiGHS's dual bound and the Lagrangian bound: no ``k``
        of these candidates cover more. ``optimal``: the cover reaches the bound (HiGHS's proof, or the greedy
        sites meeting the Lagrangian bound, which is then the proof without HiGHS).
    """
    weights = np.asarray(weights, dtype=float)
    prog = _programme(demand_xy, weights, candidate_xy, k=k, coverage_m=coverage_m)
    n_cand = prog.n_cand
    # The greedy sites and the Lagrangian bound take a second or two; when they meet, that is the proof, and
    # HiGHS (minutes on a city-wide 1.5 km programme) is not needed.
    chosen = _greedy(prog, k)
    weight = _covered_weight(prog, weights, chosen)
    bound = _lagrangian_bound(prog, k, lower=weight)
    if not _proven(weight, bound):
        integrality = np.concatenate([np.ones(n_cand), np.zeros(prog.n_rows)])
        res = milp(prog.c, constraints=prog.constraints, integrality=integrality, bounds=Bounds(0, 1),
                   options={"time_limit": time_limit_s, "mip_rel_gap": 0.0})
        if res.x is not None:
            mip_chosen = np.flatnonzero(np.round(res.x[:n_cand]) == 1)
            mip_weight = _covered_weight(prog, weights, mip_chosen)
            if res.status == 0:
                chosen, weight, bound = mip_chosen, mip_weight, mip_weight
            elif mip_weight > weight:
                chosen, weight = mip_chosen, mip_weight
        # Stopped by the time limit: HiGHS's dual bound may be tighter than the Lagrangian one.
        dual = getattr(res, "mip_dual_bound", None)
        if res.status != 0 and dual is not None and np.isfinite(dual):
            bound = min(bound, float(-dual))
    bound = max(bound, weight)
    optimal = _proven(weight, bound)
    return Coverage(chosen, _covered(prog, len(weights), chosen), weight, optimal, weight if optimal else bound)


def _proven(weight: float, bound: float) -> bool:
    """Whether a cover of ``weight`` reaches the upper ``bound`` (to floating-point rounding)."""
    return weight >= bound - 1e-9 * max(1.0, abs(bound))


def suggest_sites(result: PlannerResult, *, k: int, coverage_m: float | None = None,
                  max_candidates: int | None = None, time_limit_s: float = 60.0) -> gpd.GeoDataFrame:
    """``k`` new centre sites for the run's service type covering the most unserved children.

    Unserved: children of cells with no centre of the service within ``coverage_m`` (default: the run's
    catchment). Candidates: every cell within reach of an unserved child (Seoul at 1 km: about 10,000; HiGHS
    proves the optimum over all of them in about a second). ``max_candidates`` restricts the programme to the
    cells that alone would cover the most unserved children, a shortlist that can miss the optimum.

    Returns one row per site (EPSG:4326 points) in the order of the children each newly covers
    (``children_newly_covered``: the unserved children it covers that no earlier site in the list covers);
    ``children_covered_total`` is what the sites cover together. ``optimal`` is True only when no ``k`` cells
    among *all* candidates cover more: HiGHS proved it over all of them, or the shortlist's sites reach the
    Lagrangian bound over all of them. When HiGHS stops at ``time_limit_s`` first, the sites are the better of
    its best and the greedy choice. ``children_covered_bound`` is an upper bound on what any ``k`` candidate
    cells cover (HiGHS's dual bound or the Lagrangian bound) and ``optimality_gap`` the
    children the sites may at most fall short by (0 when optimal).
    """
    coverage = coverage_m if coverage_m is not None else result.params.catchment_m
    if coverage <= 0:
        raise InvalidQuery("coverage_m must be positive", param="coverage_m")
    if max_candidates is not None and max_candidates < 1:
        raise InvalidQuery(f"max_candidates must be at least 1, not {max_candidates}", param="max_candidates")
    cells = result.cells
    unserved = (cells["nearest_m"].to_numpy() > coverage) & (cells["children"].to_numpy() > 0)
    demand = cells[unserved]
    demand_xy = demand[["x_5179", "y_5179"]].to_numpy()
    weights = demand["children"].to_numpy()
    all_xy = cells[["x_5179", "y_5179"]].to_numpy()
    # Only cells within reach of some unserved child can help.
    reach = acc.pairs_within(all_xy, demand_xy, max_distance_m=coverage) if len(demand) else None
    every_idx = np.unique(reach.demand) if reach is not None else np.empty(0, dtype=np.intp)
    columns = ["rank", "cell_id", "district_code", "admin_dong_id", "children_newly_covered",
               "children_covered_total", "children_covered_bound", "optimality_gap", "unserved_children",
               "optimal", "geometry"]
    if len(every_idx) == 0:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry="geometry", crs=4326)
    cand_idx = every_idx
    if reach is not None and max_candidates is not None and len(every_idx) > max_candidates:
        alone = np.bincount(reach.demand, weights=weights[reach.supply], minlength=len(cells))
        cand_idx = np.sort(every_idx[np.argsort(-alone[every_idx], kind="stable")[:max_candidates]])
    candidates = cells.iloc[cand_idx]
    cand_xy = candidates[["x_5179", "y_5179"]].to_numpy()
    sol = maximal_covering(demand_xy, weights, cand_xy, k=min(k, len(candidates)), coverage_m=coverage,
                           time_limit_s=time_limit_s)
    if len(cand_idx) == len(every_idx):
        optimal, bound = sol.optimal, sol.upper_bound
    else:
        # A shortlist's optimum proves nothing about the cells left out; the Lagrangian relaxation over
        # every candidate bounds what any k sites could cover.
        bound = covering_bound(demand_xy, weights, all_xy[every_idx], k=min(k, len(every_idx)),
                               coverage_m=coverage, lower=sol.covered_weight)
        optimal = _proven(sol.covered_weight, bound)
        bound = sol.covered_weight if optimal else bound
    pairs = acc.pairs_within(demand_xy, cand_xy, max_distance_m=coverage)
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
    frame["children_covered_bound"] = bound
    frame["optimality_gap"] = bound - sol.covered_weight
    frame["unserved_children"] = float(weights.sum())
    frame["optimal"] = optimal
    points = gpd.points_from_xy(frame.pop("x_5179"), frame.pop("y_5179"), crs=5179)
    return gpd.GeoDataFrame(frame, geometry=points).to_crs(4326)[columns]
