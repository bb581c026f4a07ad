"""A simulation of the March intake on the real centres: the deferred-acceptance round against per-centre
sequential offers, with synthetic applicants.

Seats are the centres' reported free places by age (``facilities.free_by_age``, one pool per centre and age class).
Applicants come from each 행정동's 0-5 population (``admin_dongs.population_0_5``, split evenly over the six ages,
times ``applicant_rate``), placed at a random point near the dong (EPSG:5179, metres); each ranks up to
``max_choices`` centres with a free place for its age among the ``nearby`` nearest, nearer first (with noise).
Priority categories are drawn with fixed shares and scored by the year's rules; applications are spread over a year.

Both mechanisms see the same market. The round: ``deferred_acceptance`` once, every child accepts (ranking honestly
is safe, so the result is their best achievable place); it takes one answer period. Sequential offers, day by day:
every pool with a vacancy offers it to its best waiting child without a live offer; a child answers the next day,
accepting when it has no place or the offer is better than its place (leaving the old place, which reopens), else
declining; a child without a place declines a non-first choice with probability ``hold_out`` while a better entry
is alive (the gamble sequential offers invite). After admission, entries at worse centres are withdrawn and those
at better ones lapse after ``keep_days``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from geo.admission.matching import deferred_acceptance
from geo.admission.ranking import RankedEntry, rank
from geo.admission.rules import Centre, Evidence, rules_for
from geo.errors import InvalidQuery

# Shares of applicants with a category (independent draws), roughly as families are in Seoul.
CATEGORY_SHARES = {"dual_income": 0.45, "multi_child": 0.12, "single_parent_protected": 0.03,
                   "basic_livelihood": 0.03, "near_poverty": 0.03, "disabled_parent_or_sibling": 0.02,
                   "multicultural": 0.03, "sibling_enrolled": 0.08}

Seat = tuple[int, int]  # (centre index, age class)


@dataclass
class Market:
    """Seats and applicants of one simulated intake."""

    capacities: dict[Seat, int]
    preferences: dict[int, list[Seat]]
    priorities: dict[Seat, list[int]]
    centres: int
    area: str


@dataclass
class Outcome:
    """What one mechanism achieved."""

    mechanism: str
    seats: int
    filled: int
    declined: int
    given_up: int
    days_mean: float
    days_max: int
    unplaced: int
    extra: dict[str, float] = field(default_factory=dict)

    def row(self) -> list[str]:
        """The table row."""
        return [self.mechanism, f"{self.seats:,}", f"{self.filled:,}", f"{self.declined:,}", f"{self.given_up:,}",
                f"{self.days_mean:.1f}", str(self.days_max), f"{self.unplaced:,}"]


HEADER = ["mechanism", "seats", "filled", "offers declined", "places given up", "days to fill (mean)",
          "days to fill (max)", "children unplaced"]


def build_market(conn: Connection, *, area: str = "11", applicant_rate: float = 0.3, max_choices: int = 3,
                 nearby: int = 8, year: int = 2026, seed: int = 7) -> Market:
    """Seats from the centres of ``area`` (code prefix: 11 or a 구) and synthetic applicants of its dongs."""
    if not area.isdigit() or not 2 <= len(area) <= 5:
        raise InvalidQuery("area is a code prefix such as 11 or 11440", param="area", value=area)
    if not 0 < applicant_rate <= 1:
        raise InvalidQuery("applicant_rate must be in (0, 1]", param="applicant_rate", value=applicant_rate)
    rng = np.random.default_rng(seed)
    rules = rules_for(year)
    centres = conn.execute(text("""
        SELECT ST_X(ST_Transform(geom_4326, 5179)) AS x, ST_Y(ST_Transform(geom_4326, 5179)) AS y, free_by_age,
               code, facility_type
        FROM facilities WHERE status = 'active' AND district_code LIKE :p AND free_by_age IS NOT NULL ORDER BY code
    """), {"p": area + "%"}).all()
    dongs = conn.execute(text("""
        SELECT ST_X(ST_Transform(ST_PointOnSurface(geom_4326), 5179)) AS x,
               ST_Y(ST_Transform(ST_PointOnSurface(geom_4326), 5179)) AS y,
               sqrt(ST_Area(geom_4326::geography)) AS side_m, population_0_5 AS pop
        FROM admin_dongs WHERE district_code LIKE :p AND population_0_5 > 0 ORDER BY id
    """), {"p": area + "%"}).all()
    if not centres or not dongs:
        raise InvalidQuery(f"no centres or no populated 행정동 in area {area}", param="area", value=area)
    capacities: dict[Seat, int] = {}
    for i, c in enumerate(centres):
        for age in range(6):
            free = int(c.free_by_age.get(str(age)) or 0)
            if free > 0:
                capacities[(i, age)] = free
    xy = np.array([[c.x, c.y] for c in centres])
    tree = cKDTree(xy)
    preferences: dict[int, list[Seat]] = {}
    entries: dict[Seat, list[RankedEntry]] = {}
    child = 0
    base = np.datetime64("2025-03-01T00:00")
    codes = list(CATEGORY_SHARES)
    shares = np.array([CATEGORY_SHARES[c] for c in codes])
    for d in dongs:
        n = rng.poisson(d.pop * applicant_rate)
        ages = rng.integers(0, 6, size=n)
        pts = np.array([d.x, d.y]) + rng.normal(0.0, max(d.side_m, 200.0) / 4, size=(n, 2))
        k = min(nearby, len(centres))
        dist, idx = tree.query(pts, k=k)
        idx = np.asarray(idx).reshape(n, k)
        dist = np.asarray(dist).reshape(n, k)
        has = rng.random((n, len(codes))) < shares
        minutes = rng.integers(0, 365 * 24 * 60, size=n)
        for j in range(n):
            age = int(ages[j])
            noisy = dist[j] * rng.lognormal(0.0, 0.3, size=k)
            options = [(int(idx[j][m]), age) for m in np.argsort(noisy) if (int(idx[j][m]), age) in capacities]
            if not options:
                continue
            chosen = options[:max_choices]
            # A drawn sibling is enrolled at the child's first choice; centre-bound categories count only there.
            sibling_at = centres[chosen[0][0]].code
            claims = [(codes[m], Evidence.verified_record, sibling_at) for m in range(len(codes)) if has[j][m]]
            applied = (base + np.timedelta64(int(minutes[j]), "m")).astype(object)
            preferences[child] = chosen
            for seat in chosen:
                at = Centre(centres[seat[0]].code, centres[seat[0]].facility_type)
                entries.setdefault(seat, []).append(RankedEntry(f"s{child}", rules.priority(claims, centre=at),
                                                                applied))
            child += 1
    priorities = {seat: [int(e.public_id[1:]) for e in rank(es, year=year)] for seat, es in entries.items()}
    return Market(capacities=capacities, preferences=preferences, priorities=priorities, centres=len(centres),
                  area=area)


def run_round(market: Market) -> Outcome:
    """The deferred-acceptance round: one answer period, no declines."""
    assignment = deferred_acceptance(market.preferences, market.capacities, market.priorities)
    filled = sum(1 for s in assignment.values() if s is not None)
    return Outcome("intake round (DA)", sum(market.capacities.values()), filled, 0, 0, 1.0 if filled else 0.0,
                   1 if filled else 0, len(market.preferences) - filled)


def run_sequential(market: Market, *, hold_out: float = 0.3, keep_days: int = 7, horizon_days: int = 120,
                   seed: int = 11) -> Outcome:
    """Per-centre sequential offers, day by day (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pref_rank = {c: {s: i for i, s in enumerate(p)} for c, p in market.preferences.items()}
    alive: dict[int, set[Seat]] = {c: set(p) for c, p in market.preferences.items()}
    lapse_at: dict[int, int] = {}
    place: dict[int, Seat] = {}
    holders: dict[Seat, set[int]] = {s: set() for s in market.capacities}
    pointer = {s: 0 for s in market.priorities}
    declined = given_up = 0
    fill_day: dict[tuple[Seat, int], int] = {}
    for day in range(1, horizon_days + 1):
        offers: dict[int, Seat] = {}
        for seat, order in market.priorities.items():
            vacancies = market.capacities.get(seat, 0) - len(holders[seat])
            i = pointer[seat]
            # Children whose entry here is gone can never take this seat: move the pointer past them.
            while vacancies > 0 and i < len(order):
                c = order[i]
                if seat not in alive[c]:
                    i += 1
                    continue
                if c in offers:
                    break  # one live offer per child: wait for its answer
                offers[c] = seat
                vacancies -= 1
                i += 1
            pointer[seat] = i
        if not offers and not lapse_at:
            break
        for c, seat in offers.items():
            alive[c].discard(seat)
            current = place.get(c)
            better_alive = [s for s in alive[c] if pref_rank[c][s] < pref_rank[c][seat]]
            if current is not None and pref_rank[c][current] < pref_rank[c][seat]:
                declined += 1
                continue
            if current is None and better_alive and rng.random() < hold_out:
                declined += 1
                continue
            if current is not None:
                holders[current].discard(c)
                given_up += 1
                # The seat reopens: its pool looks at its list again from the top.
                pointer[current] = 0
            place[c] = seat
            holders[seat].add(c)
            fill_day[(seat, len(holders[seat]))] = day
            alive[c] = {s for s in alive[c] if pref_rank[c][s] < pref_rank[c][seat]}
            if alive[c]:
                lapse_at[c] = day + keep_days
        for c, until in list(lapse_at.items()):
            if until <= day:
                alive[c] = set()
                del lapse_at[c]
    filled = sum(len(h) for h in holders.values())
    days = [fill_day.get((s, k), 0) for s, h in holders.items() for k in range(1, len(h) + 1)]
    return Outcome("sequential offers", sum(market.capacities.values()), filled, declined, given_up,
                   float(np.mean(days)) if days else 0.0, max(days) if days else 0,
                   len(market.preferences) - len(place))


def compare(market: Market, **sequential: float) -> list[Outcome]:
    """Both mechanisms on one market."""
    return [run_round(market), run_sequential(market, **sequential)]  # type: ignore[arg-type]


def table(outcomes: Sequence[Outcome]) -> str:
    """A Markdown table of the outcomes."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(o.row()) + " |" for o in outcomes]
    return "\n".join(lines)
