"""The intake round's properties on many small random instances (hypothesis), checked by brute force."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from geo.admission.matching import deferred_acceptance, justified_envy, wasted_seats


@st.composite
def instances(draw):  # type: ignore[no-untyped-def]
    n_children = draw(st.integers(1, 6))
    n_seats = draw(st.integers(1, 4))
    children = [f"c{i}" for i in range(n_children)]
    seats = [f"s{j}" for j in range(n_seats)]
    capacities = {s: draw(st.integers(0, 2)) for s in seats}
    preferences = {c: draw(st.lists(st.sampled_from(seats), unique=True, max_size=min(3, n_seats)))
                   for c in children}
    # Each seat orders a random subset of children (the others are not eligible there).
    priorities = {}
    for s in seats:
        order = list(draw(st.permutations(children)))
        eligible = draw(st.integers(1, n_children))
        priorities[s] = order[:eligible]
    return preferences, capacities, priorities


@settings(max_examples=300, deadline=None)
@given(instances())
def test_no_justified_envy_and_no_wasted_seat(instance) -> None:  # type: ignore[no-untyped-def]
    preferences, capacities, priorities = instance
    assignment = deferred_acceptance(preferences, capacities, priorities)
    assert justified_envy(assignment, preferences, priorities) == []
    assert wasted_seats(assignment, preferences, capacities, priorities) == []
    used: dict[str, int] = {}
    for child, seat in assignment.items():
        if seat is not None:
            assert seat in preferences[child] and child in priorities[seat]
            used[seat] = used.get(seat, 0) + 1
    assert all(used[s] <= capacities[s] for s in used)


@settings(max_examples=150, deadline=None)
@given(instances())
def test_no_child_gains_by_misreporting(instance) -> None:  # type: ignore[no-untyped-def]
    preferences, capacities, priorities = instance
    truthful = deferred_acceptance(preferences, capacities, priorities)
    seats = sorted(capacities)
    for child, true_prefs in preferences.items():
        def utility(seat: str | None, prefs=true_prefs) -> int:
            return prefs.index(seat) if seat in prefs else len(prefs)
        honest = utility(truthful[child])
        # Every other report of up to 3 seats (orders and subsets) gives the child nothing it truly prefers.
        for size in range(0, min(3, len(seats)) + 1):
            for report in itertools.permutations(seats, size):
                lied = deferred_acceptance({**preferences, child: list(report)}, capacities, priorities)
                assert utility(lied[child]) >= honest, (child, report)


def test_hand_computed_instance() -> None:
    # Two seats of one place; a has priority everywhere, b wants s1 first, a wants s1 too.
    preferences = {"a": ["s1", "s2"], "b": ["s1", "s2"], "c": ["s2"]}
    priorities = {"s1": ["a", "b", "c"], "s2": ["c", "b", "a"]}
    assignment = deferred_acceptance(preferences, {"s1": 1, "s2": 1}, priorities)
    assert assignment == {"a": "s1", "c": "s2", "b": None}
