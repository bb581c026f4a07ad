"""Wait forecast: when an offer is likely to reach a waitlist entry, with its uncertainty (pure, no database).

Model (see docs/waitlist-forecast.md for the method, its back-test and its limits):

- Offers at a centre's age class (반) are a counting process in months: outside March a Poisson process with an
  unknown rate ``lambda`` per month; March (the intake round and the new 보육연도) a separate burst with its own
  unknown mean. Both unknowns get a gamma prior pooled from similar centres (same 시군구 and type, same 반; method
  of moments, so the prior is weak where centres differ) and are updated with the centre's own log, older months
  weighing less (half-life ``half_life_months``) so a changed rate is followed and its uncertainty stays honest.
  Counts given the rate are Poisson, so predictions are gamma-Poisson (negative binomial).
- Entries ahead leave without an offer (withdrawn, lapsed, dropped) at a monthly hazard ``h`` estimated the same
  way from the log (exits without an offer per waiting entry-month).
- The entry at rank ``r`` is reached by the offer that comes after the ``r - 1`` entries ahead are gone (offered
  or left). The forecast draws the unknowns from their posteriors, runs the months forward and reports, for each
  month end, the share of draws in which the entry had its offer; the 50 % and 90 % dates are the first month
  ends where that share reaches the level.

What it does not know: entries that join ahead later (a higher 순위 applying after you), a centre closing or growing,
the entry's own answer. It assumes the entry stays waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

LEVELS = (0.5, 0.9)
HORIZON_MONTHS = 24
HALF_LIFE_MONTHS = 12.0
DRAWS = 2000
MARCH = 3
# Prior strength bounds (months of data the pooled prior is worth) and the prior used with no pool at all.
MIN_PRIOR_MONTHS, MAX_PRIOR_MONTHS = 0.5, 12.0
MIN_POOL_FOR_SPREAD = 3  # centres needed to estimate how much similar centres differ
FALLBACK_RATE_PER_MONTH = 0.5
FALLBACK_MARCH_OFFERS = 2.0
FALLBACK_LEAVE_HAZARD = 0.02


@dataclass(frozen=True)
class FlowHistory:
    """What a centre's log shows for one 반: offer dates, the observed period, and the exits without an offer.

    ``waiting_entry_months`` is the total time entries spent waiting (the exposure for leaving);
    ``left_without_offer`` the entries that ended (withdrawn, lapsed, dropped) without ever being offered.
    """

    observed_from: date
    observed_to: date
    offer_dates: tuple[date, ...] = ()
    waiting_entry_months: float = 0.0
    left_without_offer: int = 0

    @property
    def months_observed(self) -> float:
        """Length of the observed period in months."""
        return max((self.observed_to - self.observed_from).days, 0) / 30.4375


@dataclass(frozen=True)
class Exposure:
    """Weighted counts and exposures of a history (recent months weigh more)."""

    offers: float  # outside March
    months: float  # outside March
    march_offers: float
    marches: float  # observed March-months


def exposure(history: FlowHistory, *, half_life_months: float | None = HALF_LIFE_MONTHS) -> Exposure:
    """The history cut into calendar months, each weighted by ``0.5 ** (age / half_life)`` (``None``: unweighted)."""
    offers = months = march_offers = marches = 0.0
    by_month: dict[tuple[int, int], int] = {}
    for d in history.offer_dates:
        if history.observed_from <= d <= history.observed_to:
            by_month[(d.year, d.month)] = by_month.get((d.year, d.month), 0) + 1
    start = history.observed_from
    end = history.observed_to
    cursor = date(start.year, start.month, 1)
    while cursor <= end:
        nxt = _next_month(cursor)
        lo, hi = max(cursor, start), min(nxt, end + timedelta(days=1))
        share = max((hi - lo).days, 0) / (nxt - cursor).days
        age = (end - (lo + (hi - lo) / 2)).days / 30.4375
        w = 1.0 if half_life_months is None else 0.5 ** (age / half_life_months)
        n = by_month.get((cursor.year, cursor.month), 0)
        if cursor.month == MARCH:
            march_offers += w * n
            marches += w * share
        else:
            offers += w * n
            months += w * share
        cursor = nxt
    return Exposure(offers, months, march_offers, marches)


@dataclass(frozen=True)
class GammaPrior:
    """A gamma prior of a rate: ``shape`` pseudo-events over ``rate`` pseudo-exposure."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        """Prior mean of the rate."""
        return self.shape / self.rate


@dataclass(frozen=True)
class PooledPrior:
    """Priors pooled from similar centres: offers per month outside March, offers per March, leave hazard."""

    monthly: GammaPrior
    march: GammaPrior
    leave: GammaPrior
    centres: int = 0


FALLBACK_PRIOR = PooledPrior(GammaPrior(FALLBACK_RATE_PER_MONTH * MIN_PRIOR_MONTHS, MIN_PRIOR_MONTHS),
                             GammaPrior(FALLBACK_MARCH_OFFERS * MIN_PRIOR_MONTHS, MIN_PRIOR_MONTHS),
                             GammaPrior(FALLBACK_LEAVE_HAZARD * 10, 10.0))


def _moments_prior(counts: Sequence[float], exposures: Sequence[float], fallback: float) -> GammaPrior:
    """Gamma prior by the method of moments across centres: mean rate, between-centre variance beyond Poisson
    noise; its strength (``rate``, in exposure units) bounded to [MIN_PRIOR_MONTHS, MAX_PRIOR_MONTHS]."""
    pairs = [(c, e) for c, e in zip(counts, exposures, strict=True) if e > 0]
    if not pairs:
        return GammaPrior(fallback * MIN_PRIOR_MONTHS, MIN_PRIOR_MONTHS)
    c = np.array([p[0] for p in pairs])
    e = np.array([p[1] for p in pairs])
    mean = float(c.sum() / e.sum())
    if mean <= 0:
        mean = 0.05  # no offers seen anywhere in the pool: a small rate, not zero
    rates = c / e
    between = float(np.average((rates - mean) ** 2, weights=e)) - mean * float(np.mean(1 / e))
    if len(pairs) < MIN_POOL_FOR_SPREAD:
        strength = 2 * MIN_PRIOR_MONTHS  # too few centres to tell how much they differ: a weak prior
    else:
        strength = MAX_PRIOR_MONTHS if between <= 0 else mean / between
    strength = min(max(strength, MIN_PRIOR_MONTHS), MAX_PRIOR_MONTHS)
    return GammaPrior(mean * strength, strength)


def pooled_prior(histories: Sequence[FlowHistory], *, half_life_months: float | None = HALF_LIFE_MONTHS
                 ) -> PooledPrior:
    """Priors from the histories of similar centres (the centre itself may be among them)."""
    if not histories:
        return FALLBACK_PRIOR
    ex = [exposure(h, half_life_months=half_life_months) for h in histories]
    monthly = _moments_prior([x.offers for x in ex], [x.months for x in ex], FALLBACK_RATE_PER_MONTH)
    march = _moments_prior([x.march_offers for x in ex], [x.marches for x in ex], FALLBACK_MARCH_OFFERS)
    left = sum(h.left_without_offer for h in histories)
    entry_months = sum(h.waiting_entry_months for h in histories)
    hazard = (left + 0.5) / (entry_months + 10.0)
    # The leave hazard is pooled with the strength of 10 entry-months per centre at most 120.
    strength = min(10.0 * len(histories), 120.0)
    return PooledPrior(monthly, march, GammaPrior(hazard * strength, strength), centres=len(histories))


@dataclass(frozen=True)
class Forecast:
    """When an offer is likely: the dates where the chance reaches each level (``None``: not within
    the horizon), the monthly curve, and the data it rests on."""

    rank: int
    as_of: date
    dates: dict[float, date | None]
    curve: tuple[tuple[date, float], ...]
    months_observed: float
    offers_seen: int
    march_offers_seen: int
    offers_per_month: float  # posterior mean outside March
    offers_per_march: float  # posterior mean
    leave_share_per_month: float  # posterior mean hazard of an entry ahead leaving without an offer
    pooled_centres: int
    horizon_months: int = HORIZON_MONTHS
    levels: tuple[float, ...] = field(default=LEVELS)

    def chance_by(self, on: date) -> float:
        """The forecast chance of an offer by ``on`` (the curve's last month end on or before it)."""
        p = 0.0
        for end, share in self.curve:
            if end <= on:
                p = share
        return p


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def month_ends(as_of: date, months: int) -> list[date]:
    """The ends of the ``months`` calendar months from the one containing ``as_of``."""
    out = []
    cursor = date(as_of.year, as_of.month, 1)
    for _ in range(months):
        nxt = _next_month(cursor)
        out.append(nxt - timedelta(days=1))
        cursor = nxt
    return out


STEPS_PER_MONTH = 4


def _steps(first: date, end: date) -> list[date]:
    """Ends of about ``STEPS_PER_MONTH`` equal steps from ``first`` to ``end`` (days included): the chance of an
    offer is far from linear within a month for the first ranks, so dates are read off a finer curve."""
    days = (end - first).days + 1
    n = max(1, min(STEPS_PER_MONTH, days))
    return [first + timedelta(days=int(round(days * (k + 1) / n)) - 1) for k in range(n)]


def crossing(start: date, curve: Sequence[tuple[date, float]], level: float) -> date | None:
    """The day the chance reaches ``level``, linear between two points of the curve; ``None`` when not within
    the curve."""
    before, p_before = start, 0.0
    for end, p in curve:
        if p >= level:
            step = (level - p_before) / (p - p_before) if p > p_before else 1.0
            return before + timedelta(days=int(np.ceil(step * (end - before).days)))
        before, p_before = end, p
    return None


def forecast(history: FlowHistory, *, rank: int, prior: PooledPrior = FALLBACK_PRIOR, as_of: date | None = None,
             horizon_months: int = HORIZON_MONTHS, draws: int = DRAWS, seed: int = 0,
             half_life_months: float | None = HALF_LIFE_MONTHS, levels: Sequence[float] = LEVELS) -> Forecast:
    """The forecast for the entry at ``rank`` (1 = next offer) of a 반 with ``history``, from ``as_of`` (default:
    the end of the history). Deterministic for a given ``seed``."""
    if rank < 1:
        raise ValueError("rank starts at 1")
    start = as_of or history.observed_to
    ex = exposure(history, half_life_months=half_life_months)
    post_m = GammaPrior(prior.monthly.shape + ex.offers, prior.monthly.rate + ex.months)
    post_march = GammaPrior(prior.march.shape + ex.march_offers, prior.march.rate + ex.marches)
    post_leave = GammaPrior(prior.leave.shape + history.left_without_offer,
                            prior.leave.rate + history.waiting_entry_months)
    rng = np.random.default_rng(seed)
    lam = rng.gamma(post_m.shape, 1 / post_m.rate, size=draws)
    burst = rng.gamma(post_march.shape, 1 / post_march.rate, size=draws)
    hazard = np.minimum(rng.gamma(post_leave.shape, 1 / post_leave.rate, size=draws), 1.0)
    # Only the draws where the entry is still waiting are carried on (they shrink fast for the first ranks).
    ahead = np.full(draws, rank - 1, dtype=np.int64)
    reached = 0
    curve: list[tuple[date, float]] = []
    fine: list[tuple[date, float]] = []  # the chance at the end of every step, for the dates
    for end in month_ends(start, horizon_months):
        first = date(end.year, end.month, 1)
        month_days = (end - first).days + 1
        step_start = max(first, start)
        for step_end in _steps(step_start, end):
            share = ((step_end - step_start).days + 1) / month_days
            step_start = step_end + timedelta(days=1)
            if len(ahead):
                # Leaving and offers spread over the step: half the step's leavers go before its offers.
                leave_p = (1 - (1 - hazard) ** share) / 2
                ahead = ahead - rng.binomial(ahead, leave_p)
                offers = rng.poisson((burst if end.month == MARCH else lam) * share)
                waiting = offers <= ahead
                reached += int(len(ahead) - waiting.sum())
                ahead = ahead[waiting] - offers[waiting]
                lam, burst, hazard = lam[waiting], burst[waiting], hazard[waiting]
                ahead = ahead - rng.binomial(ahead, leave_p[waiting])
            fine.append((step_end, reached / draws))
        curve.append((end, fine[-1][1]))
    dates = {level: crossing(start, fine, level) for level in levels}
    return Forecast(rank=rank, as_of=start, dates=dates, curve=tuple(curve),
                    months_observed=round(history.months_observed, 1),
                    offers_seen=sum(1 for d in history.offer_dates if d.month != MARCH),
                    march_offers_seen=sum(1 for d in history.offer_dates if d.month == MARCH),
                    offers_per_month=post_m.mean, offers_per_march=post_march.mean,
                    leave_share_per_month=post_leave.mean, pooled_centres=prior.centres,
                    horizon_months=horizon_months, levels=tuple(levels))
