"""Maximal covering (site suggestions): the MIP optimum equals exhaustive enumeration on small instances, and
on real data (three 구 of Seoul) the suggested sites cover what spopt's MCLP proves optimal whenever they claim
optimality, and report an upper bound that the optimum never exceeds otherwise."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pulp
import pytest
from spopt.locate import MCLP
from sqlalchemy import Engine

from geo.analysis.planner import PlannerParams, PlannerResult, run_planner
from geo.analysis.sites import covering_bound, maximal_covering, suggest_sites
from geo.errors import InvalidQuery


def _brute_force(demand_xy, weights, cand_xy, k, coverage_m) -> float:
    d = np.hypot(demand_xy[:, None, 0] - cand_xy[None, :, 0], demand_xy[:, None, 1] - cand_xy[None, :, 1])
    covers = d <= coverage_m
    return max(float(weights[covers[:, list(c)].any(axis=1)].sum())
               for c in itertools.combinations(range(len(cand_xy)), k))


@pytest.mark.parametrize(("seed", "k"), [(3, 1), (3, 2), (4, 3), (5, 4)])
def test_optimum_equals_enumeration(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    demand_xy, cand_xy = rng.uniform(0, 4000, (60, 2)), rng.uniform(0, 4000, (14, 2))
    weights = rng.integers(1, 50, 60).astype(float)
    sol = maximal_covering(demand_xy, weights, cand_xy, k=k, coverage_m=800)
    assert sol.optimal and len(sol.chosen) == k
    best = _brute_force(demand_xy, weights, cand_xy, k, 800)
    assert sol.covered_weight == pytest.approx(best) and sol.upper_bound == sol.covered_weight
    # The Lagrangian bound is an upper bound on every choice of k sites.
    assert covering_bound(demand_xy, weights, cand_xy, k=k, coverage_m=800) >= best - 1e-9
    # HiGHS stopped at once: the greedy sites, optimal only if they meet the bound, and the bound still holds.
    rushed = maximal_covering(demand_xy, weights, cand_xy, k=k, coverage_m=800, time_limit_s=1e-9)
    assert len(rushed.chosen) == k and rushed.covered_weight <= best + 1e-9 <= rushed.upper_bound + 2e-9
    assert rushed.optimal == (rushed.covered_weight == pytest.approx(rushed.upper_bound, rel=1e-9))
    if rushed.optimal:
        assert rushed.covered_weight == pytest.approx(best)
    # The reported coverage is what the chosen sites really cover.
    chosen = cand_xy[sol.chosen]
    d = np.hypot(demand_xy[:, None, 0] - chosen[None, :, 0], demand_xy[:, None, 1] - chosen[None, :, 1])
    assert (sol.covered == (d <= 800).any(axis=1)).all()


def test_hand_case() -> None:
    # Two clusters: 3 x 10 children around (0, 0) and 1 x 25 at (5000, 0); one site covers one cluster.
    demand = np.array([[0, 0], [100, 0], [0, 100], [5000, 0]], dtype=float)
    weights = np.array([10, 10, 10, 25], dtype=float)
    cand = np.array([[50, 50], [5000, 10], [2500, 0]], dtype=float)
    one = maximal_covering(demand, weights, cand, k=1, coverage_m=500)
    assert one.chosen.tolist() == [0] and one.covered_weight == 30
    two = maximal_covering(demand, weights, cand, k=2, coverage_m=500)
    assert sorted(two.chosen.tolist()) == [0, 1] and two.covered_weight == 55


def test_bad_k() -> None:
    pts = np.zeros((2, 2))
    with pytest.raises(InvalidQuery):
        maximal_covering(pts, np.ones(2), pts, k=0, coverage_m=100)
    with pytest.raises(InvalidQuery):
        maximal_covering(pts, np.ones(2), pts, k=3, coverage_m=100)


# --- real data: spopt's MCLP (PuLP + CBC) as the reference optimum ---------------------------------------------


@pytest.fixture(scope="module")
def north(seoul_engine: Engine) -> PlannerResult:
    """강북구, 도봉구 and 노원구 (구 codes 113xx) at the default 1 km: about 900 candidate cells, more than a
    400-cell shortlist holds."""
    with seoul_engine.connect() as conn:
        return run_planner(conn, PlannerParams(area_code="113"))


def _spopt_optimum(result: PlannerResult, k: int) -> float:
    """The optimum over every cell within reach of an unserved child, by spopt (independent of our model)."""
    cells, radius = result.cells, result.params.catchment_m
    demand = cells[(cells["nearest_m"] > radius) & (cells["children"] > 0)]
    d = np.hypot(demand["x_5179"].to_numpy()[:, None] - cells["x_5179"].to_numpy()[None, :],
                 demand["y_5179"].to_numpy()[:, None] - cells["y_5179"].to_numpy()[None, :])
    cost = d[:, (d <= radius).any(axis=0)]
    model = MCLP.from_cost_matrix(cost, demand["children"].to_numpy(), service_radius=radius, p_facilities=k)
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    assert model.problem.status == pulp.LpStatusOptimal
    return float(pulp.value(model.problem.objective))


def _claims(sites: pd.DataFrame) -> tuple[float, bool]:
    return float(sites["children_covered_total"].iloc[0]), bool(sites["optimal"].iloc[0])


def _bound(sites: pd.DataFrame) -> tuple[float, float]:
    return float(sites["children_covered_bound"].iloc[0]), float(sites["optimality_gap"].iloc[0])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning:pulp")  # spopt 0.7 builds its models the PuLP 3 way
@pytest.mark.parametrize("k", [5, 15, 30])
def test_sites_are_optimal_when_they_say_so_and_bound_the_gap_otherwise(north: PlannerResult, k: int) -> None:
    reference = _spopt_optimum(north, k)
    tol = 1e-6 * reference
    # The default searches every candidate cell: the proven optimum.
    sites = suggest_sites(north, k=k)
    covered, optimal = _claims(sites)
    assert optimal and covered == pytest.approx(reference, rel=1e-9)
    assert _bound(sites) == (covered, 0)
    # Shortlists (400 cells, as the planner once searched, and 50) are honest: optimal only when they reach the
    # optimum, otherwise a bound that the optimum does not exceed.
    for shortlist in (400, 50):
        sites = suggest_sites(north, k=k, max_candidates=shortlist)
        covered, optimal = _claims(sites)
        assert covered <= reference + tol
        if optimal:
            assert covered == pytest.approx(reference, rel=1e-9), (shortlist, covered, reference)
        else:
            bound, gap = _bound(sites)
            assert reference - covered <= gap + tol and bound >= reference - tol, (shortlist, bound, reference)
            assert gap == pytest.approx(bound - covered) and gap > 0
