"""The risk-based planning list of a 구: every operating centre ranked by a transparent score, the sum of named
components, each shown with the facts behind it, so an officer can say why a centre is visited first.

Components (points; the weights are ``WEIGHTS``):

- ``vacancy_missing`` / ``vacancy_stale``: the centre never reported its vacancies, or not for ``stale_days``;
- ``over_capacity`` / ``class_ratio``: the centre's current figures (the last report, else the official data)
  break 정원 or the legal class ratios, checked by ``geo.vacancy.reports.validate_report`` (the same rules a
  report must pass; 시행규칙 §10);
- ``open_findings``: findings not closed yet (each, capped); ``overdue_findings``: orders past their deadline;
  ``recent_findings``: findings closed in the last ``RECENT_DAYS``;
- ``complaints``: complaints received in the last ``RECENT_DAYS`` (each, capped);
- ``never_visited`` / ``visit_overdue``: no visit on record, or the last one longer ago than ``VISIT_DUE_DAYS``.

Centres with an inspection planned already are listed with ``planned`` set (the officer sees the plan), and the
list is ordered by score (highest first), then code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.domain import OPERATING_STATUS_VALUES
from geo.errors import InvalidReport
from geo.inspections.states import resolve_now
from geo.vacancy.reports import GROUPS, VacancyReportIn, validate_report

RECENT_DAYS = 365
VISIT_DUE_DAYS = 2 * 365
WEIGHTS: dict[str, int] = {
    "vacancy_missing": 20, "vacancy_stale": 10, "over_capacity": 30, "class_ratio": 20, "open_findings": 15,
    "overdue_findings": 20, "recent_findings": 5, "complaints": 10, "never_visited": 15, "visit_overdue": 10,
}
CAPS: dict[str, int] = {"open_findings": 3, "overdue_findings": 3, "recent_findings": 3, "complaints": 3}


@dataclass(frozen=True)
class Component:
    """One named part of a score: ``points`` and the facts it rests on."""

    code: str
    points: int
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """A centre on the list: its rank, score and the components that make it up."""

    rank: int
    code: str
    name: str
    score: int
    components: tuple[Component, ...]
    planned: int | None  # id of an inspection planned already


def _counted(code: str, n: int, **facts: Any) -> Component | None:
    if n <= 0:
        return None
    return Component(code, WEIGHTS[code] * min(n, CAPS.get(code, n)), {"count": n, **facts})


def _figures(values: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in (values or {}).items():
        if key in keys and isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            out[key] = int(value)
    return out


def ratio_component(*, capacity: int | None, enrolled_by_age: dict[str, Any] | None,
                    classes_by_age: dict[str, Any] | None) -> Component | None:
    """``over_capacity`` or ``class_ratio`` when the figures break the rules a vacancy report must pass (the
    first broken rule, as ``validate_report`` names it); None when they hold or the classes are unknown."""
    enrolled = _figures(enrolled_by_age, GROUPS)
    classes = _figures(classes_by_age, GROUPS)
    if not enrolled or not any(classes.values()):
        return None
    try:
        validate_report(VacancyReportIn(enrolled_by_age=enrolled, free_by_age={}, classes_by_age=classes),
                        capacity=capacity, stored_classes=None)
    except InvalidReport as exc:
        if exc.extra.get("capacity") is not None:
            return Component("over_capacity", WEIGHTS["over_capacity"],
                             {"enrolled": exc.extra.get("enrolled"), "capacity": exc.extra["capacity"]})
        param = str(exc.extra.get("param") or "")
        group = param.partition(".")[2]
        return Component("class_ratio", WEIGHTS["class_ratio"],
                         {"group": group, "enrolled": enrolled.get(group), "limit": exc.extra.get("limit")})
    return None


_FACTS = """
    SELECT f.id, f.code, f.name, f.capacity, f.enrolled_by_age, f.classes_by_age,
           (SELECT max(reported_at) FROM vacancy_reports r WHERE r.facility_id = f.id) AS last_reported_at,
           (SELECT count(*) FROM findings g WHERE g.facility_id = f.id AND g.status <> 'closed') AS open_findings,
           (SELECT count(*) FROM findings g WHERE g.facility_id = f.id AND g.status = 'overdue') AS overdue_findings,
           (SELECT count(*) FROM findings g WHERE g.facility_id = f.id AND g.status = 'closed'
              AND g.closed_at >= :recent) AS recent_findings,
           (SELECT count(*) FROM complaints c WHERE c.facility_id = f.id AND c.received_at >= :recent
              AND c.received_at <= :now) AS complaints,
           (SELECT max(visited_at) FROM inspections i WHERE i.facility_id = f.id AND i.visited_at IS NOT NULL)
              AS last_visit,
           (SELECT min(id) FROM inspections i WHERE i.facility_id = f.id AND i.status = 'planned') AS planned
    FROM facilities f
    WHERE f.district_code = :d AND f.status = ANY(:statuses)
"""


def components(row: Any, *, now: datetime, stale_after_days: float) -> tuple[Component, ...]:
    """The named components of one centre's facts (a row of the planning query)."""
    parts: list[Component | None] = []
    if row.last_reported_at is None:
        parts.append(Component("vacancy_missing", WEIGHTS["vacancy_missing"]))
    elif now - row.last_reported_at > timedelta(days=stale_after_days):
        parts.append(Component("vacancy_stale", WEIGHTS["vacancy_stale"],
                               {"days": (now - row.last_reported_at).days}))
    parts.append(ratio_component(capacity=row.capacity, enrolled_by_age=row.enrolled_by_age,
                                 classes_by_age=row.classes_by_age))
    parts.append(_counted("open_findings", int(row.open_findings)))
    parts.append(_counted("overdue_findings", int(row.overdue_findings)))
    parts.append(_counted("recent_findings", int(row.recent_findings), days=RECENT_DAYS))
    parts.append(_counted("complaints", int(row.complaints), days=RECENT_DAYS))
    if row.last_visit is None:
        parts.append(Component("never_visited", WEIGHTS["never_visited"]))
    elif now - row.last_visit > timedelta(days=VISIT_DUE_DAYS):
        parts.append(Component("visit_overdue", WEIGHTS["visit_overdue"], {"days": (now - row.last_visit).days}))
    return tuple(p for p in parts if p is not None)


def planning_list(conn: Connection, district_code: str, *, stale_after_days: float, now: datetime | None = None,
                  limit: int | None = None) -> list[Ranked]:
    """The 구's operating centres ranked by risk (highest score first, then code), each with its components."""
    at = resolve_now(now)
    rows = conn.execute(text(_FACTS), {"d": district_code, "statuses": list(OPERATING_STATUS_VALUES),
                                       "recent": at - timedelta(days=RECENT_DAYS), "now": at}).all()
    scored = []
    for row in rows:
        parts = components(row, now=at, stale_after_days=stale_after_days)
        scored.append((sum(p.points for p in parts), row, parts))
    scored.sort(key=lambda s: (-s[0], s[1].code))
    ranked = [Ranked(rank=i + 1, code=row.code, name=row.name, score=score, components=parts,
                     planned=None if row.planned is None else int(row.planned))
              for i, (score, row, parts) in enumerate(scored)]
    return ranked[:limit] if limit is not None else ranked

