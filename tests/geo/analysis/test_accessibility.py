"""2SFCA / E2SFCA, nearest distance and the desert rule on hand-computed cases, and against PySAL ``access``."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from access import Access
from access import weights as access_weights

from geo.analysis import accessibility as acc
from geo.errors import InvalidQuery

# Two demand points and two centres on a line (metres): A(0) 100 children, B(1500) 50; S1(500) 30 places,
# S2(2000) 20 places; catchment 1000 m. d(A,S1)=500, d(A,S2)=2000 (out), d(B,S1)=1000 (exactly at), d(B,S2)=500.
DEMAND_XY = np.array([[0.0, 0.0], [1500.0, 0.0]])
SUPPLY_XY = np.array([[500.0, 0.0], [2000.0, 0.0]])
CHILDREN = np.array([100.0, 50.0])
PLACES = np.array([30.0, 20.0])


def test_pairs_within_includes_the_catchment_edge_and_nothing_beyond() -> None:
    pairs = acc.pairs_within(DEMAND_XY, SUPPLY_XY, max_distance_m=1000)
    got = sorted(zip(pairs.demand.tolist(), pairs.supply.tolist(), pairs.distance_m.tolist(), strict=True))
    assert got == [(0, 0, 500.0), (1, 0, 1000.0), (1, 1, 500.0)]


def test_two_step_fca_hand_computed() -> None:
    pairs = acc.pairs_within(DEMAND_XY, SUPPLY_XY, max_distance_m=1000)
    # R1 = 30 / (100 + 50) = 0.2; R2 = 20 / 50 = 0.4; A_A = R1; A_B = R1 + R2.
    got = acc.two_step_fca(pairs, CHILDREN, PLACES, catchment_m=1000)
    assert got == pytest.approx([0.2, 0.6], abs=1e-12)
    # Every place is handed out: sum_i P_i A_i = sum_j S_j when every centre reaches some child.
    assert float(CHILDREN @ got) == pytest.approx(PLACES.sum())


def test_enhanced_two_step_fca_hand_computed() -> None:
    pairs = acc.pairs_within(DEMAND_XY, SUPPLY_XY, max_distance_m=1000)
    # Zones 333.3/666.7/1000 m weighted 1/0.68/0.22: w(A,S1)=0.68 (500 m), w(B,S1)=0.22 (1000 m), w(B,S2)=0.68.
    r1 = 30 / (0.68 * 100 + 0.22 * 50)
    r2 = 20 / (0.68 * 50)
    got = acc.enhanced_two_step_fca(pairs, CHILDREN, PLACES, catchment_m=1000)
    assert got == pytest.approx([0.68 * r1, 0.22 * r1 + 0.68 * r2], abs=1e-12)


def test_centre_without_children_in_reach_gives_nothing_and_divides_by_nothing() -> None:
    pairs = acc.pairs_within(DEMAND_XY, np.array([[9000.0, 0.0]]), max_distance_m=1000)
    assert acc.two_step_fca(pairs, CHILDREN, np.array([10.0]), catchment_m=1000).tolist() == [0.0, 0.0]


def test_gaussian_decay_is_one_at_zero_and_zero_at_the_catchment() -> None:
    decay = acc.gaussian_decay(1000)
    w = decay(np.array([0.0, 500.0, 1000.0, 1500.0]))
    assert w[0] == pytest.approx(1.0) and w[2] == pytest.approx(0.0, abs=1e-12) and w[3] == 0.0
    assert w[1] == pytest.approx((np.exp(-0.125) - np.exp(-0.5)) / (1 - np.exp(-0.5)))


@pytest.mark.parametrize(("zones", "weights"), [((), ()), ((500, 300), (1, 0.5)), ((500,), (1.5,)), ((0, 10), (1, 1))])
def test_bad_zones_are_refused(zones, weights) -> None:
    with pytest.raises(InvalidQuery):
        acc.step_decay(zones, weights)


def test_nearest_distance_against_brute_force() -> None:
    rng = np.random.default_rng(7)
    demand, supply = rng.uniform(0, 5000, (300, 2)), rng.uniform(0, 5000, (40, 2))
    dist, idx = acc.nearest_distance_m(demand, supply)
    full = np.hypot(demand[:, None, 0] - supply[None, :, 0], demand[:, None, 1] - supply[None, :, 1])
    assert dist == pytest.approx(full.min(axis=1), abs=1e-9)
    assert (idx == full.argmin(axis=1)).all()
    none, none_idx = acc.nearest_distance_m(demand, np.empty((0, 2)))
    assert np.isinf(none).all() and (none_idx == -1).all()


def test_desert_rule() -> None:
    children = np.array([60, 60, 40, 60, 60, 51])
    places = np.array([0, 10, 0, 20, 30, 17])
    # no centre; 6 per place; too few children; exactly 3 per place (not more); 2 per place; 3.0 per place.
    assert acc.is_childcare_desert(children, places).tolist() == [True, True, False, False, False, False]


# --- PySAL access on the same inputs --------------------------------------------------------------------------


def access_scores(demand_xy, children, supply_xy, places, *, catchment_m, weight_fn=None) -> np.ndarray:
    """2SFCA from PySAL ``access`` with a cost table computed here by brute force (all pairs within reach)."""
    d = np.hypot(demand_xy[:, None, 0] - supply_xy[None, :, 0], demand_xy[:, None, 1] - supply_xy[None, :, 1])
    i, j = np.nonzero(d <= catchment_m)
    cost = pd.DataFrame({"origin": i, "dest": j, "cost": d[i, j]})
    demand_df = pd.DataFrame({"children": children}, index=pd.Index(range(len(children)), name="geoid"))
    supply_df = pd.DataFrame({"places": places}, index=pd.Index(range(len(places)), name="geoid"))
    model = Access(demand_df=demand_df, demand_value="children", supply_df=supply_df, supply_value="places",
                   cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="cost")
    series = model.two_stage_fca(name="a", max_cost=catchment_m, weight_fn=weight_fn)["a_places"]
    return series.reindex(range(len(children))).fillna(0.0).to_numpy()


def test_hand_case_equals_access() -> None:
    got = acc.two_step_fca(acc.pairs_within(DEMAND_XY, SUPPLY_XY, max_distance_m=1000), CHILDREN, PLACES,
                           catchment_m=1000)
    assert np.abs(got - access_scores(DEMAND_XY, CHILDREN, SUPPLY_XY, PLACES, catchment_m=1000)).max() <= 1e-9


@pytest.mark.parametrize("seed", [1, 2])
def test_random_cases_equal_access(seed: int) -> None:
    rng = np.random.default_rng(seed)
    demand_xy, supply_xy = rng.uniform(0, 8000, (400, 2)), rng.uniform(0, 8000, (60, 2))
    children, places = rng.integers(1, 120, 400).astype(float), rng.integers(5, 200, 60).astype(float)
    for catchment_m in (600.0, 1500.0):
        pairs = acc.pairs_within(demand_xy, supply_xy, max_distance_m=catchment_m)
        ours = acc.two_step_fca(pairs, children, places, catchment_m=catchment_m)
        ref = access_scores(demand_xy, children, supply_xy, places, catchment_m=catchment_m)
        assert np.abs(ours - ref).max() <= 1e-9
        zones = acc.default_zones_m(catchment_m)
        ours_e = acc.enhanced_two_step_fca(pairs, children, places, catchment_m=catchment_m)
        step = access_weights.step_fn(dict(zip(zones, acc.DEFAULT_ZONE_WEIGHTS, strict=True)))
        ref_e = access_scores(demand_xy, children, supply_xy, places, catchment_m=catchment_m, weight_fn=step)
        assert np.abs(ours_e - ref_e).max() <= 1e-9
        gauss = acc.gaussian_decay(catchment_m)
        ours_g = acc.two_step_fca(pairs, children, places, catchment_m=catchment_m, decay=gauss)
        ref_g = access_scores(demand_xy, children, supply_xy, places, catchment_m=catchment_m,
                              weight_fn=lambda c, g=gauss: float(g(np.array([c]))[0]))
        assert np.abs(ours_g - ref_g).max() <= 1e-9


def test_pairs_match_brute_force_on_a_grid_with_points_at_the_edge() -> None:
    # Points on a 100 m lattice: many pairs are exactly 300 m or 500 m apart.
    pts = np.array(list(itertools.product(range(0, 1000, 100), repeat=2)), dtype=float)
    pairs = acc.pairs_within(pts, pts[::7], max_distance_m=500)
    d = np.hypot(pts[:, None, 0] - pts[None, ::7, 0], pts[:, None, 1] - pts[None, ::7, 1])
    assert len(pairs.demand) == int((d <= 500).sum())
