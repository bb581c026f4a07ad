"""Maximal covering (site suggestions): the MIP optimum equals exhaustive enumeration on small instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from geo.analysis.sites import maximal_covering
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
    assert sol.covered_weight == pytest.approx(_brute_force(demand_xy, weights, cand_xy, k, 800))
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
