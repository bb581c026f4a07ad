"""Back-test of the wait forecast on simulated histories with known truth (pure, no database).

A simulated 반 (pool) has a true offer rate per month outside March, a true March burst, a true monthly hazard of
waiting entries leaving without an offer, and arrivals at the back of the queue. Pools come in districts whose
rates scatter around a district level (the pooled prior of the forecast is built from the other pools of the
district). Some pools change their rate (times 0.5 to 2) at a random month, before or after the cut date. The
history runs ``months_history`` months up to the cut date; the forecast is made at the cut for entries of the
queue; the simulation then goes on ``HORIZON_MONTHS`` and records when each entry got its offer.

Calibration: of the entries told "50 % by D", the share offered by D should be about 0.5 (likewise 0.9). An entry
whose own (simulated) leaving time falls before D is not counted, whether or not it was offered first: its leaving
time is drawn independently of the offers, so the entries kept are an unbiased sample of "had it stayed" (the
forecast assumes the entry stays). Dropping only those that left unoffered would over-count the offered ones.
Optionally ``jump_share`` of arrivals have priority and go ahead of the non-priority entries (the forecast does not
model this; the table shows what it costs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from scipy.stats import beta

from geo.admission.forecast import (
    HORIZON_MONTHS,
    LEVELS,
    MARCH,
    FlowHistory,
    forecast,
    month_ends,
    pooled_prior,
)

DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class PoolTruth:
    """The true parameters of a simulated 반."""

    rate_per_month: float
    march_offers: float
    leave_hazard: float
    arrivals_per_month: float
    months_history: int
    change_month: int | None = None  # months after the history start when the rate changes
    change_factor: float = 1.0
    jump_share: float = 0.0


@dataclass
class SimulatedPool:
    """One simulated 반: offers and entries over history and horizon."""

    truth: PoolTruth
    start: date
    cut: date
    offer_days: list[date]
    joined: list[date]
    leaves: list[date]
    priority: list[bool]
    offered_on: list[date | None] = field(default_factory=list)


def _day(start: date, months: float) -> date:
    return start + timedelta(days=int(round(months * DAYS_PER_MONTH)))


def simulate_pool(truth: PoolTruth, rng: np.random.Generator, *, cut: date,
                  horizon_months: int = HORIZON_MONTHS) -> SimulatedPool:
    """Simulate offers and the queue from ``months_history`` months before ``cut`` to ``horizon_months`` after."""
    start = _day(cut, -truth.months_history)
    end = month_ends(cut, horizon_months)[-1]
    change_day = None if truth.change_month is None else _day(start, truth.change_month)
    offer_days: list[date] = []
    cursor = date(start.year, start.month, 1)
    while cursor <= end:
        nxt = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)
        days = (nxt - cursor).days
        for k in range(days):
            d = cursor + timedelta(days=k)
            if d < start or d > end:
                continue
            factor = truth.change_factor if change_day is not None and d >= change_day else 1.0
            mean = (truth.march_offers / days if cursor.month == MARCH else truth.rate_per_month / DAYS_PER_MONTH)
            offer_days.extend([d] * int(rng.poisson(mean * factor)))
        cursor = nxt
    # The queue at the history start, then arrivals at the back (or ahead, with priority).
    joined: list[date] = [start - timedelta(days=int(x)) for x in rng.integers(1, 200, size=rng.poisson(
        max(truth.rate_per_month, 0.3) * 4))]
    total_days = (end - start).days
    n_arrivals = int(rng.poisson(truth.arrivals_per_month * total_days / DAYS_PER_MONTH))
    joined += [start + timedelta(days=int(x)) for x in rng.integers(0, total_days, size=n_arrivals)]
    joined.sort()
    leaves = [j + timedelta(days=int(rng.exponential(DAYS_PER_MONTH / truth.leave_hazard)) + 1) for j in joined]
    priority = [bool(rng.random() < truth.jump_share) and j >= start for j in joined]
    pool = SimulatedPool(truth, start, cut, offer_days, joined, leaves, priority, [None] * len(joined))
    for d in offer_days:
        head = _head(pool, d)
        if head is not None:
            pool.offered_on[head] = d
    return pool


def _present(pool: SimulatedPool, on: date) -> list[int]:
    """Entries waiting on ``on`` (joined, not left, not offered before), in queue order."""
    alive = [i for i in range(len(pool.joined)) if pool.joined[i] <= on < pool.leaves[i]
             and (pool.offered_on[i] is None or pool.offered_on[i] >= on)]  # type: ignore[operator]
    return sorted(alive, key=lambda i: (not pool.priority[i], pool.joined[i], i))


def _head(pool: SimulatedPool, on: date) -> int | None:
    for i in _present(pool, on):
        if pool.offered_on[i] is None:
            return i
    return None


def history_at_cut(pool: SimulatedPool) -> FlowHistory:
    """What the log shows at the cut date."""
    cut = pool.cut
    months = 0.0
    left = 0
    for i, j in enumerate(pool.joined):
        if j > cut:
            continue
        offered = pool.offered_on[i]
        stop = min(d for d in (pool.leaves[i], offered, cut) if d is not None)
        begin = max(j, pool.start)
        months += max((stop - begin).days, 0) / DAYS_PER_MONTH
        if pool.leaves[i] <= cut and (offered is None or offered > pool.leaves[i]) and pool.leaves[i] > pool.start:
            left += 1
    return FlowHistory(observed_from=pool.start, observed_to=cut,
                       offer_dates=tuple(d for d in pool.offer_days if d <= cut),
                       waiting_entry_months=months, left_without_offer=left)


@dataclass
class CalibrationRow:
    """Nominal level against the observed share of entries offered by the forecast date."""

    level: float
    told: int  # entries given a date at this level
    offered: int  # of them, offered by that date
    beyond_horizon: int  # entries told "not within the horizon" at this level
    offered_in_horizon_beyond: int  # of those, offered within the horizon anyway
    by_pool: list[tuple[int, int]] = field(default_factory=list)  # (told, offered) of each pool

    @property
    def share(self) -> float:
        """Observed share offered by the date."""
        return self.offered / self.told if self.told else float("nan")

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the observed share."""
        a = (1 - confidence) / 2
        lo = 0.0 if self.offered == 0 else float(beta.ppf(a, self.offered, self.told - self.offered + 1))
        hi = 1.0 if self.offered == self.told else float(beta.ppf(1 - a, self.offered + 1, self.told - self.offered))
        return lo, hi

    def pool_interval(self, confidence: float = 0.95, *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
        """Interval of the observed share with pools resampled (entries of one pool share its rates, so they are
        not independent: this interval is the honest one, the binomial one too narrow)."""
        pools = np.array([p for p in self.by_pool if p[0]], dtype=float)
        if not len(pools):
            return float("nan"), float("nan")
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(pools), size=(resamples, len(pools)))
        shares = pools[picks, 1].sum(axis=1) / pools[picks, 0].sum(axis=1)
        a = (1 - confidence) / 2
        return float(np.quantile(shares, a)), float(np.quantile(shares, 1 - a))


@dataclass(frozen=True)
class Scenario:
    """A family of simulated districts."""

    name: str
    districts: int = 60
    pools_per_district: int = 6
    change_probability: float = 0.3
    jump_share: float = 0.0
    history_months: tuple[int, ...] = (3, 6, 12, 24, 36)
    entries_per_pool: int = 8


def simulate_scenario(scenario: Scenario, *, seed: int = 2026, cut: date = date(2026, 11, 15)
                      ) -> list[list[SimulatedPool]]:
    """Districts of simulated pools (same seed, same histories)."""
    rng = np.random.default_rng(seed)
    districts = []
    for _ in range(scenario.districts):
        level = float(rng.uniform(0.3, 3.0))
        pools = []
        for _ in range(scenario.pools_per_district):
            rate = level * float(rng.lognormal(0.0, 0.4))
            months = int(rng.choice(scenario.history_months))
            change = rng.random() < scenario.change_probability
            truth = PoolTruth(rate_per_month=rate, march_offers=rate * float(rng.uniform(2.0, 6.0)),
                              leave_hazard=float(rng.uniform(0.01, 0.06)),
                              arrivals_per_month=rate * float(rng.uniform(0.9, 1.6)), months_history=months,
                              change_month=int(rng.integers(0, months + 12)) if change else None,
                              change_factor=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))) if change else 1.0,
                              jump_share=scenario.jump_share)
            pools.append(simulate_pool(truth, rng, cut=cut))
        districts.append(pools)
    return districts


def calibrate(districts: Sequence[Sequence[SimulatedPool]], *, levels: Sequence[float] = LEVELS,
              entries_per_pool: int = 8, draws: int = 2000, seed: int = 7) -> list[CalibrationRow]:
    """Forecast at the cut for up to ``entries_per_pool`` entries of each pool (ranks spread over the queue) and
    compare with what happened."""
    rows = {lv: CalibrationRow(lv, 0, 0, 0, 0) for lv in levels}
    rng = np.random.default_rng(seed)
    for pools in districts:
        histories = [history_at_cut(p) for p in pools]
        for k, pool in enumerate(pools):
            prior = pooled_prior([h for m, h in enumerate(histories) if m != k])
            queue = _present(pool, pool.cut)
            if not queue:
                continue
            picks = sorted(set(np.linspace(0, len(queue) - 1, num=min(entries_per_pool, len(queue))).astype(int)))
            start = {lv: (rows[lv].told, rows[lv].offered) for lv in levels}
            for position in picks:
                i = queue[position]
                fc = forecast(histories[k], rank=position + 1, prior=prior, as_of=pool.cut, draws=draws,
                              seed=int(rng.integers(2**31)), levels=levels)
                horizon_end = fc.curve[-1][0]
                for lv in levels:
                    when = fc.dates[lv]
                    target = when or horizon_end
                    offered = pool.offered_on[i]
                    if pool.leaves[i] <= target:
                        # Would have left by the date (offered or not): dropped whatever happened, so that the
                        # entries kept are a sample independent of their offers.
                        continue
                    got = offered is not None and offered <= target
                    row = rows[lv]
                    if when is None:
                        row.beyond_horizon += 1
                        row.offered_in_horizon_beyond += got
                    else:
                        row.told += 1
                        row.offered += got
            for lv in levels:
                rows[lv].by_pool.append((rows[lv].told - start[lv][0], rows[lv].offered - start[lv][1]))
    return [rows[lv] for lv in levels]


def calibration_table(results: Sequence[tuple[str, Sequence[CalibrationRow]]]) -> str:
    """A Markdown table of calibration rows per scenario."""
    lines = ["| scenario | nominal | entries given a date | offered by the date | observed share "
             "| 95 % binomial interval | 95 % interval, pools resampled "
             "| told \"not within 24 months\" | of those offered within 24 months |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results:
        for r in rows:
            lo, hi = r.interval()
            plo, phi = r.pool_interval()
            lines.append(f"| {name} | {r.level:.0%} | {r.told:,} | {r.offered:,} | {r.share:.3f} | "
                         f"{lo:.3f}–{hi:.3f} | {plo:.3f}–{phi:.3f} | {r.beyond_horizon:,} | "
                         f"{r.offered_in_horizon_beyond:,} |")
    return "\n".join(lines)


SCENARIOS = (
    Scenario("steady and changing rates (30 % of pools change ×0.5–2)"),
    Scenario("steady rates only", change_probability=0.0),
    Scenario("with 10 % of arrivals jumping ahead (not modelled)", jump_share=0.1),
)
