"""What a sanction is and how long its disclosure lasts: the vocabulary and the one period rule.

Confirmed (docs/disclosure.md cites the sources): since 2013-12-05 (영유아보육법 시행령 amended 2013-09-26) a centre
that obtained subsidies by fraud and was suspended or closed for it, and staff whose qualification was suspended or
cancelled for child abuse, are published on the websites of the local authorities, the ministry and the childcare
portal; what is published is the violation, the disposition, the centre's name and address and the names of its
representative (대표자) and director (원장). Publication follows the disposition once it is final (확정: no appeal
pending), never before.

Not confirmed from a source we could read: the length of the period for 어린이집. We apply 3 years, the period the
comparable rule for kindergartens states (유아교육법 시행령, amended 2020-07-21), as ``PERIOD_YEARS`` here, the one
place to change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from geo.domain import SEOUL_TZ
from geo.errors import InvalidQuery

#: Length of a disclosure (see the module's note: not confirmed for 어린이집).
PERIOD_YEARS = 3
RULE_ID = "영유아보육법 §49-3; period 3 years (unconfirmed, docs/disclosure.md)"


class SanctionKind(StrEnum):
    """Kinds of administrative disposition against a centre (영유아보육법 §44-§45-2, §40)."""

    correction_order = "correction_order"  # 시정명령 (§44)
    suspension = "suspension"  # 운영정지 (§45)
    closure = "closure"  # 어린이집 폐쇄 (§45)
    penalty_surcharge = "penalty_surcharge"  # 과징금 (§45-2)
    subsidy_recovery = "subsidy_recovery"  # 보조금 반환명령 (§40)
    qualification_suspension = "qualification_suspension"  # 원장·보육교사 자격정지 (§46, §47)


#: Korean names, as the published lists write them (the importer reads these too).
KIND_LABELS_KO: dict[SanctionKind, str] = {
    SanctionKind.correction_order: "시정명령",
    SanctionKind.suspension: "운영정지",
    SanctionKind.closure: "폐쇄",
    SanctionKind.penalty_surcharge: "과징금",
    SanctionKind.subsidy_recovery: "보조금 반환",
    SanctionKind.qualification_suspension: "자격정지",
}
_ALIASES: dict[str, SanctionKind] = {
    **{k.value: k for k in SanctionKind},
    **{v.replace(" ", ""): k for k, v in KIND_LABELS_KO.items()},
    "시설폐쇄": SanctionKind.closure, "어린이집폐쇄": SanctionKind.closure,
    "보조금반환명령": SanctionKind.subsidy_recovery, "보조금환수": SanctionKind.subsidy_recovery,
    "과징금부과": SanctionKind.penalty_surcharge, "운영정지처분": SanctionKind.suspension,
}


def parse_kind(value: str, *, param: str = "kind") -> SanctionKind:
    """A kind from its value or Korean label (blanks ignored); InvalidQuery otherwise."""
    kind = _ALIASES.get(value.strip().replace(" ", ""))
    if kind is None:
        choices = ", ".join(f"{k.value} ({KIND_LABELS_KO[k]})" for k in SanctionKind)
        raise InvalidQuery(f"kind must be one of {choices}; not {value!r}", param=param, value=value)
    return kind


@dataclass(frozen=True)
class Period:
    """Days a disclosure is published: ``published_from`` to ``published_until``, both inclusive."""

    published_from: date
    published_until: date

    def holds_on(self, day: date) -> bool:
        """Whether ``day`` lies in the period."""
        return self.published_from <= day <= self.published_until


def add_years(day: date, years: int) -> date:
    """``day`` moved ``years`` calendar years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def publication_period(*, final_at: date | None, start: date | None = None) -> Period:
    """The period of a disclosure of a sanction final on ``final_at``: from ``start`` (default: the day it became
    final; never before it) for ``PERIOD_YEARS`` years (the last day is the day before the anniversary).

    Raises
    ------
    InvalidQuery
        The sanction is not final (``final_at`` is None), or ``start`` is before it became final.
    """
    if final_at is None:
        raise InvalidQuery("the sanction is not final (확정) yet: it cannot be published", param="final_at")
    first = start or final_at
    if first < final_at:
        raise InvalidQuery(f"publication cannot start before the sanction is final ({final_at.isoformat()})",
                           param="published_from", value=first.isoformat())
    return Period(first, add_years(first, PERIOD_YEARS) - timedelta(days=1))


def seoul_day(now: datetime) -> date:
    """The day in Seoul at instant ``now`` (an aware datetime; naive is taken as UTC)."""
    if now.tzinfo is None:
        from datetime import UTC
        now = now.replace(tzinfo=UTC)
    return now.astimezone(SEOUL_TZ).date()
