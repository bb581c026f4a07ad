"""The flow of offers from the database, for the wait forecast (``geo.admission.forecast`` does the statistics).

A 반's history: the offers of the centre for that age class (``waitlist_offers``, every 보육연도: the 0세반 of 2025
and of 2026 are the same class), observed from its first application to now; the exits without an offer (entries
withdrawn, lapsed or dropped that never had an offer there) over the time entries spent waiting. The pooled prior
comes from the centres of the same 시군구 and type with any waitlist history for that age class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import SEOUL, resolve_now
from geo.admission.forecast import FlowHistory, Forecast, PooledPrior, forecast, pooled_prior
from geo.admission.forecast_words import LANGUAGES, describe
from geo.admission.queue import my_ranks

DAYS_PER_MONTH = 30.4375
Key = tuple[int, int]  # facility id, age class


def histories(conn: Connection, facility_ids: Sequence[int], *, now: datetime) -> dict[Key, FlowHistory]:
    """The flow histories of every age class with waitlist entries at the given centres, up to ``now``.

    The time entries spent waiting counts to the start of ``now``'s day (Korean time): a history then changes
    only when the data do, not with every second, so the day's forecasts are computed once (``_cached_forecast``;
    counted to ``now``, the key changed on every call and the cache never answered).
    """
    today = now.astimezone(SEOUL).date()
    day_start = datetime.combine(today, time(0), SEOUL)
    stats = conn.execute(text("""
        SELECT e.facility_id, e.age_class, min(e.applied_at) AS since,
               sum(EXTRACT(EPOCH FROM GREATEST(LEAST(CASE WHEN e.status IN ('waiting', 'offered') THEN :cut
                                                          ELSE e.status_at END, :cut) - e.applied_at,
                                               interval '0'))) / 86400.0
                   AS waiting_days,
               count(*) FILTER (WHERE e.status IN ('withdrawn', 'lapsed', 'dropped')
                                AND NOT EXISTS (SELECT 1 FROM waitlist_offers o WHERE o.entry_id = e.id))
                   AS left_without_offer
        FROM waitlist_entries e
        WHERE e.facility_id = ANY(:f) AND e.applied_at <= :now
        GROUP BY e.facility_id, e.age_class
    """), {"f": list(facility_ids), "now": now, "cut": min(day_start, now)}).all()
    offers = conn.execute(text("""
        SELECT facility_id, age_class, created_at FROM waitlist_offers
        WHERE facility_id = ANY(:f) AND created_at <= :now ORDER BY facility_id, age_class, created_at
    """), {"f": list(facility_ids), "now": now}).all()
    dates: dict[Key, list[date]] = {}
    for o in offers:
        dates.setdefault((o.facility_id, o.age_class), []).append(o.created_at.astimezone(SEOUL).date())
    out = {}
    for s in stats:
        key = (s.facility_id, s.age_class)
        offered = dates.get(key, [])
        since = min([s.since.astimezone(SEOUL).date(), *offered])
        out[key] = FlowHistory(observed_from=since, observed_to=today, offer_dates=tuple(offered),
                               waiting_entry_months=float(s.waiting_days or 0) / DAYS_PER_MONTH,
                               left_without_offer=int(s.left_without_offer))
    return out


def _similar_centres(conn: Connection, facility_ids: Sequence[int]) -> dict[int, list[int]]:
    """For each centre, the centres of the same 시군구 and type that have waitlist entries (itself included; the
    prior leaves it out, its own log is the likelihood)."""
    rows = conn.execute(text("""
        SELECT f.id, array_agg(DISTINCT s.id) AS similar
        FROM facilities f
        JOIN facilities s ON s.district_code = f.district_code AND s.facility_type = f.facility_type
        WHERE f.id = ANY(:f) AND EXISTS (SELECT 1 FROM waitlist_entries e WHERE e.facility_id = s.id)
        GROUP BY f.id
    """), {"f": list(facility_ids)}).all()
    return {r.id: list(r.similar) for r in rows}


@lru_cache(maxsize=2048)
def _cached_forecast(history: FlowHistory, rank: int, prior: PooledPrior, as_of: date, seed: int) -> Forecast:
    return forecast(history, rank=rank, prior=prior, as_of=as_of, seed=seed)


def forecast_view(fc: Forecast) -> dict[str, Any]:
    """A forecast for the API: dates per probability level (``null``: not within the horizon), the data it rests
    on and the plain words in every language."""
    return {
        "as_of": fc.as_of,
        "horizon_months": fc.horizon_months,
        "levels": [{"probability": level, "by": fc.dates[level]} for level in fc.levels],
        "chance_within_horizon": round(fc.curve[-1][1], 3),
        "basis": {"months_observed": fc.months_observed, "offers_seen": fc.offers_seen + fc.march_offers_seen,
                  "march_offers_seen": fc.march_offers_seen,
                  "offers_per_month_outside_march": round(fc.offers_per_month, 2),
                  "offers_per_march": round(fc.offers_per_march, 2),
                  "leave_share_per_month": round(fc.leave_share_per_month, 3),
                  "similar_centres_pooled": fc.pooled_centres},
        "words": {lang: describe(fc, lang) for lang in LANGUAGES},
    }


def entry_forecasts(conn: Connection, items: Sequence[tuple[int, int, int]], *,
                    now: datetime | None = None) -> list[Forecast]:
    """Forecasts for (facility id, age class, rank) items: the histories of the centres and of their similar
    centres in two queries. The same queue position on the same day gives the same figures (the seed follows
    the centre, class, rank and day)."""
    at = resolve_now(now)
    today = at.astimezone(SEOUL).date()
    similar = _similar_centres(conn, sorted({i[0] for i in items}))
    ids = sorted({i[0] for i in items} | {s for group in similar.values() for s in group})
    flows = histories(conn, ids, now=at)
    out = []
    for facility_id, age_class, rank in items:
        history = flows.get((facility_id, age_class)) or FlowHistory(today, today)
        pool = [flows[(s, age_class)] for s in similar.get(facility_id, [])
                if s != facility_id and (s, age_class) in flows]
        digest = hashlib.sha256(f"{facility_id}:{age_class}:{rank}:{today}".encode()).digest()
        out.append(_cached_forecast(history, rank, pooled_prior(pool), today, int.from_bytes(digest[:4], "big")))
    return out


def with_forecasts(conn: Connection, ranks: list[dict[str, Any]], *,
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """A parent's rank check (``my_ranks``) with each waiting entry's wait forecast added under ``forecast``
    (``None`` for an entry that holds an offer)."""
    waiting = [r for r in ranks if r["status"] == "waiting"]
    if not waiting:
        return [{**r, "forecast": None} for r in ranks]
    codes = conn.execute(text("SELECT code, id FROM facilities WHERE code = ANY(:c)"),
                         {"c": sorted({r["centre"] for r in waiting})}).all()
    id_of = {r.code: r.id for r in codes}
    forecasts = entry_forecasts(conn, [(id_of[r["centre"]], r["age_class"], r["rank"]) for r in waiting],
                                now=now)
    view = {r["entry"]: forecast_view(fc) for r, fc in zip(waiting, forecasts, strict=True)}
    return [{**r, "forecast": view.get(r["entry"])} for r in ranks]


def my_ranks_with_forecasts(conn: Connection, *, parent_user_id: int,
                            now: datetime | None = None) -> list[dict[str, Any]]:
    """``my_ranks`` (rank, band, the reasons of every change) with each waiting entry's wait forecast."""
    at = resolve_now(now)
    return with_forecasts(conn, my_ranks(conn, parent_user_id=parent_user_id, now=at), now=at)
