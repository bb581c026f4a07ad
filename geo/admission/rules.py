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


@dataclass(frozen=True)
class Category:
    """One priority category of a year's rules."""

    code: str
    ko: str
    tier: int
    points: int


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

    def priority(self, claims: Iterable[tuple[str, Evidence]]) -> Priority:
        """The priority of an entry with ``claims`` (category code, evidence state); rejected claims do not
        count, unknown codes are an ``InvalidQuery``.

        The tier is the best tier among counting categories; points add up over the counting categories of that
        tier (a 1순위 family's 2순위 items do not lift it further), plus bonuses whose categories all count.
        """
        counting: set[str] = set()
        for code, evidence in claims:
            if code not in self.categories:
                raise InvalidQuery(f"unknown priority category {code!r} for {self.year}", param="categories",
                                   value=code)
            if Evidence(evidence).counts:
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
    categories = {c["code"]: Category(c["code"], c["ko"], int(c["tier"]), int(c["points"]))
                  for c in raw["categories"]}
    bonuses = tuple(Bonus(b["code"], b["ko"], tuple(b["requires"]), int(b["points"])) for b in raw["bonuses"])
    for bonus in bonuses:
        missing = [r for r in bonus.requires if r not in categories]
        if missing:
            raise ValueError(f"rules {raw['year']}: bonus {bonus.code} requires unknown categories {missing}")
    return Rules(year=int(raw["year"]), source=raw["source"], categories=categories, bonuses=bonuses,
                 max_applications=int(raw["max_applications"]),
                 max_applications_if_enrolled=int(raw["max_applications_if_enrolled"]),
                 offer_days=int(raw["offer_days"]), keep_other_entries_days=int(raw["keep_other_entries_days"]),
                 tie_break=raw["tie_break"])
