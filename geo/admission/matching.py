"""The intake round: child-proposing deferred acceptance (Gale-Shapley) over seats per centre and class year.

Each child ranks up to a few centres; each centre (for the child's class year) orders applicants by the published
priority (``geo.admission.ranking``). With strict priorities and fixed seats per class year the result is stable
(no child is passed over for a seat they wanted by a child of lower priority), non-wasteful (no wanted seat stays
empty) and strategy-proof for children (ranking centres honestly is safe), so the order of chosen centres gives no
advantage.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

Child = TypeVar("Child", bound=Hashable)
Seat = TypeVar("Seat", bound=Hashable)


def deferred_acceptance(
    preferences: Mapping[Child, Sequence[Seat]],
    capacities: Mapping[Seat, int],
    priorities: Mapping[Seat, Sequence[Child]],
) -> dict[Child, Seat | None]:
    """Assign children to seats (a seat is a centre's class year) by child-proposing deferred acceptance.

    Parameters
    ----------
    preferences
        Each child's seats, most wanted first.
    capacities
        Free places per seat.
    priorities
        Each seat's order over the children that may apply to it (highest priority first); a child a seat does
        not list is not eligible there.

    Returns
    -------
    dict
        Child -> assigned seat, or ``None`` when unplaced.
    """
    rank_at = {seat: {child: i for i, child in enumerate(order)} for seat, order in priorities.items()}
    next_choice = {child: 0 for child in preferences}
    held: dict[Seat, list[Child]] = {seat: [] for seat in capacities}
    free = [child for child in preferences]
    while free:
        child = free.pop()
        prefs = preferences[child]
        while next_choice[child] < len(prefs):
            seat = prefs[next_choice[child]]
            next_choice[child] += 1
            ranks = rank_at.get(seat, {})
            if child not in ranks or capacities.get(seat, 0) <= 0:
                continue
            holders = held[seat]
            holders.append(child)
            holders.sort(key=lambda c: ranks[c])
            if len(holders) <= capacities[seat]:
                break
            rejected = holders.pop()
            if rejected != child:
                free.append(rejected)
                break
        # A child whose list is exhausted stays unplaced.
    assignment: dict[Child, Seat | None] = {child: None for child in preferences}
    for seat, holders in held.items():
        for child in holders:
            assignment[child] = seat
    return assignment


def justified_envy(
    assignment: Mapping[Child, Seat | None],
    preferences: Mapping[Child, Sequence[Seat]],
    priorities: Mapping[Seat, Sequence[Child]],
) -> list[tuple[Child, Seat, Child]]:
    """Pairs that break stability: (child, seat it prefers to its own, a holder of that seat it outranks)."""
    rank_at = {seat: {child: i for i, child in enumerate(order)} for seat, order in priorities.items()}
    holders: dict[Seat, list[Child]] = {}
    for child, seat in assignment.items():
        if seat is not None:
            holders.setdefault(seat, []).append(child)
    found = []
    for child, prefs in preferences.items():
        own = assignment[child]
        better = prefs[: prefs.index(own)] if own in prefs else list(prefs)
        for seat in better:
            ranks = rank_at.get(seat, {})
            if child not in ranks:
                continue
            for holder in holders.get(seat, []):
                if ranks[holder] > ranks[child]:
                    found.append((child, seat, holder))
    return found


def wasted_seats(
    assignment: Mapping[Child, Seat | None],
    preferences: Mapping[Child, Sequence[Seat]],
    capacities: Mapping[Seat, int],
    priorities: Mapping[Seat, Sequence[Child]],
) -> list[tuple[Child, Seat]]:
    """(child, seat) where the seat has room, the child is eligible there and prefers it to its assignment."""
    used: dict[Seat, int] = {}
    for seat in assignment.values():
        if seat is not None:
            used[seat] = used.get(seat, 0) + 1
    found = []
    for child, prefs in preferences.items():
        own = assignment[child]
        better = prefs[: prefs.index(own)] if own in prefs else list(prefs)
        for seat in better:
            eligible = child in set(priorities.get(seat, ()))
            if eligible and used.get(seat, 0) < capacities.get(seat, 0):
                found.append((child, seat))
    return found
