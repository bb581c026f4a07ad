"""Admission priority rules as data, one JSON file per childcare year (``geo/admission/rules/<year>.json``).

A new 보육사업안내 changes a file, not code: categories (code, Korean label, 순위 tier 1 or 2, points), bonuses for
combinations (맞벌이 + 다자녀 +300), application limits and deadlines. ``Priority`` is what an entry's verified or
claimed categories are worth: the tier (1 best, 3 = everyone else) and the points within it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from geo.errors import InvalidQuery, NotFound

RULES_DIR = Path(__file__).resolve().parent / "rules"
GENERAL_TIER = 3  # everyone without a 1순위 or 2순위 category


class Evidence(StrEnum):
    """State of a claimed priority category."""

    claimed = "claimed"  # declared by the parent, not yet checked
    verified_centre = "verified_centre"  # documents checked by the centre
    verified_record = "verified_record"  # linked public record (e.g. 행복e음)
    rejected = "rejected"  # checked and not granted: does not count

    @property
    def counts(self) -> bool:
        """Whether the category counts for ranking (claims count until rejected)."""
        return self is not Evidence.rejected

    @property
    def verified(self) -> bool:
        """Whether the category has been checked and granted."""
        return self in (Evidence.verified_centre, Evidence.verified_record)


POINTS_RULES = ("best_tier_sum_plus_bonuses",)
SCOPES = ("anywhere", "named_centre", "designated_centres")


@dataclass(frozen=True)
class Scope:
    """Where a category counts: ``anywhere``; ``named_centre`` (only at the centre the claim names, e.g. the
    centre where a sibling is enrolled); ``designated_centres`` (only at centres of ``facility_types`` or listed
    in ``codes``, e.g. 산업단지·기부채납·공동주택 어린이집)."""

    kind: str = "anywhere"
    facility_types: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    quota_share: tuple[float, float] | None = None  # share of places the category may fill (low, high)
    # A centre's own agreed share within ``quota_share`` (code, share); centres not listed get the high bound.
    quota_by_code: tuple[tuple[str, float], ...] = ()

    def quota_at(self, code: str) -> float | None:
        """The share of the centre's 정원 the category may fill at centre ``code`` (``None``: no quota)."""
        if self.quota_share is None:
            return None
        return dict(self.quota_by_code).get(code, self.quota_share[1])


@dataclass(frozen=True)
class Centre:
    """What the rules need to know of the centre an entry is ranked at."""

    code: str
    facility_type: str


@dataclass(frozen=True)
class Category:
    """One priority category of a year's rules."""

    code: str
    ko: str
    tier: int
    points: int
    scope: Scope = Scope()

    def counts_at(self, centre: Centre | None, detail: str | None) -> bool:
        """Whether a claim of this category (with its ``detail``) counts at ``centre`` (``None``: no centre
        known, so centre-bound categories do not count)."""
        if self.scope.kind == "anywhere":
            return True
        if centre is None:
            return False
        if self.scope.kind == "named_centre":
            return detail is not None and detail == centre.code
        return centre.facility_type in self.scope.facility_types or centre.code in self.scope.codes


@dataclass(frozen=True)
class Bonus:
    """Extra points when every ``requires`` category counts."""

    code: str
    ko: str
    requires: tuple[str, ...]
    points: int


@dataclass(frozen=True)
class Priority:
    """What an entry is worth: lower ``tier`` first, then more ``points``; ``reasons`` lists what counted."""

    tier: int
    points: int
    reasons: tuple[str, ...]

    @property
    def band(self) -> str:
        """A coarse public label (``1순위 300-399``) that does not reveal the categories."""
        tier = f"{self.tier}순위" if self.tier < GENERAL_TIER else "일반"
        low = (self.points // 100) * 100
        return f"{tier} {low}-{low + 99}"


@dataclass(frozen=True)
class Rules:
    """A childcare year's admission rules."""

    year: int
    source: str
    categories: dict[str, Category]
    bonuses: tuple[Bonus, ...]
    max_applications: int
    max_applications_if_enrolled: int
    offer_days: int
    keep_other_entries_days: int
    tie_break: str
    points_rule: str = "best_tier_sum_plus_bonuses"
    max_points: int | None = None

    def category_scope(self, code: str) -> Scope:
        """Where category ``code`` counts."""
        return self.categories[code].scope

    def priority(self, claims: Iterable[tuple[str, Evidence] | tuple[str, Evidence, str | None]], *,
                 centre: Centre | None = None) -> Priority:
        """The priority at ``centre`` of an entry with ``claims`` (category code, evidence state and optionally
        the claim's detail, e.g. the facility code where a sibling is enrolled); rejected claims do not count,
        nor do claims of a category bound to other centres (see ``Scope``); unknown codes are an
        ``InvalidQuery``.

        ``points_rule`` ``best_tier_sum_plus_bonuses`` (the only rule so far, read from the rules file): the tier
        is the best tier among counting categories; points add up over the counting categories of that tier (a
        1순위 family's 2순위 items do not lift it further), plus bonuses whose categories all count, capped at
        ``max_points`` when the rules set one.
        """
        counting: set[str] = set()
        for claim in claims:
            code, evidence = claim[0], claim[1]
            detail = claim[2] if len(claim) > 2 else None  # type: ignore[misc]
            if code not in self.categories:
                raise InvalidQuery(f"unknown priority category {code!r} for {self.year}", param="categories",
                                   value=code)
            if Evidence(evidence).counts and self.categories[code].counts_at(centre, detail):
                counting.add(code)
        if not counting:
            return Priority(tier=GENERAL_TIER, points=0, reasons=())
        tier = min(self.categories[c].tier for c in counting)
        in_tier = sorted(c for c in counting if self.categories[c].tier == tier)
        points = sum(self.categories[c].points for c in in_tier)
        reasons = list(in_tier)
        for bonus in self.bonuses:
            if all(r in counting for r in bonus.requires):
                points += bonus.points
                reasons.append(bonus.code)
        if self.max_points is not None and points > self.max_points:
            points = self.max_points
            reasons.append(f"max_points_cap_{self.max_points}")
        return Priority(tier=tier, points=points, reasons=tuple(reasons))


def childcare_year(on: date) -> int:
    """The 보육연도 containing ``on`` (it starts on 1 March)."""
    return on.year if on.month >= 3 else on.year - 1


def available_years() -> list[int]:
    """Years that have a rules file."""
    return sorted(int(p.stem) for p in RULES_DIR.glob("*.json") if p.stem.isdigit())


@lru_cache
def rules_for(year: int) -> Rules:
    """The rules of childcare year ``year``: its own file, else the latest earlier one (rules carry over until a
    new 보육사업안내 is published).

    Raises
    ------
    NotFound
        No rules file for that year or any earlier one.
    """
    candidates = [y for y in available_years() if y <= year]
    if not candidates:
        raise NotFound(f"no admission rules for {year} or earlier", param="year", value=year)
    raw = json.loads((RULES_DIR / f"{max(candidates)}.json").read_text(encoding="utf-8"))
    categories = {c["code"]: Category(c["code"], c["ko"], int(c["tier"]), int(c["points"]), _scope(c))
                  for c in raw["categories"]}
    points_rule = raw.get("points_rule", POINTS_RULES[0])
    if points_rule not in POINTS_RULES:
        raise ValueError(f"rules {raw['year']}: unknown points_rule {points_rule!r} (known: {POINTS_RULES})")
    bonuses = tuple(Bonus(b["code"], b["ko"], tuple(b["requires"]), int(b["points"])) for b in raw["bonuses"])
    for bonus in bonuses:
        missing = [r for r in bonus.requires if r not in categories]
        if missing:
            raise ValueError(f"rules {raw['year']}: bonus {bonus.code} requires unknown categories {missing}")
    return Rules(year=int(raw["year"]), source=raw["source"], categories=categories, bonuses=bonuses,
                 max_applications=int(raw["max_applications"]),
                 max_applications_if_enrolled=int(raw["max_applications_if_enrolled"]),
                 offer_days=int(raw["offer_days"]), keep_other_entries_days=int(raw["keep_other_entries_days"]),
                 tie_break=raw["tie_break"], points_rule=points_rule,
                 max_points=None if raw.get("max_points") is None else int(raw["max_points"]))


def _scope(raw_category: dict[str, Any]) -> Scope:
    """The ``applies_at`` of a category in a rules file (absent: anywhere)."""
    raw = raw_category.get("applies_at") or {"kind": "anywhere"}
    if raw["kind"] not in SCOPES:
        raise ValueError(f"category {raw_category['code']}: unknown applies_at kind {raw['kind']!r}")
    quota = raw.get("quota_share")
    by_code = tuple(sorted((str(k), float(v)) for k, v in (raw.get("quota_by_code") or {}).items()))
    if quota is not None and any(not quota[0] <= v <= quota[1] for _, v in by_code):
        raise ValueError(f"category {raw_category['code']}: quota_by_code outside quota_share {quota}")
    return Scope(kind=raw["kind"], facility_types=tuple(raw.get("facility_types", ())),
                 codes=tuple(raw.get("codes", ())),
                 quota_share=None if quota is None else (float(quota[0]), float(quota[1])), quota_by_code=by_code)
