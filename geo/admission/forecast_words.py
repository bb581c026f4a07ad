"""The wait forecast in plain words, Korean and English, in one place (the portal's translations start here).

Every string a parent reads about a forecast is a template of ``WORDS``; ``describe`` fills them in.
"""

from __future__ import annotations

from datetime import date

from geo.admission.forecast import Forecast

LANGUAGES = ("ko", "en")

WORDS: dict[str, dict[str, str]] = {
    "ko": {
        "level": "{month}까지 입소 제안을 받을 가능성 약 {pct}%",
        "levels_joined": ", ",
        "beyond": "앞으로 {months}개월 안에 {pct}% 가능성에 이르지 못합니다",
        "chance_at_horizon": "{months}개월 안에 제안을 받을 가능성은 약 {pct}%입니다",
        "basis": ("이 어린이집 이 반의 지난 {observed}개월 기록(제안 {offers}건, 그중 3월 {march}건)과 같은 구의 "
                  "비슷한 어린이집 {pooled}곳의 기록으로 계산했습니다."),
        "basis_thin": ("이 어린이집 이 반의 기록이 짧아({observed}개월, 제안 {offers}건) 같은 구의 비슷한 어린이집 "
                       "{pooled}곳의 기록에 주로 기대고 있습니다."),
        "limits": ("예측일 뿐 약속이 아닙니다. 나중에 더 높은 순위로 신청하는 아이가 앞에 들어오면 늦어질 수 있고, "
                   "대기를 유지한다고 가정합니다."),
        "month": "{year}년 {month}월",
    },
    "en": {
        "level": "about {pct}% chance of an offer by {month}",
        "levels_joined": "; ",
        "beyond": "{pct}% is not reached within the next {months} months",
        "chance_at_horizon": "the chance of an offer within {months} months is about {pct}%",
        "basis": ("Based on {observed} months of this centre's offers for this class ({offers} offers, {march} of "
                  "them in March) and the records of {pooled} similar centres in the district."),
        "basis_thin": ("This centre's record for this class is short ({observed} months, {offers} offers), so the "
                       "forecast leans mostly on {pooled} similar centres in the district."),
        "limits": ("A forecast, not a promise: it can be later if children with a higher priority apply after you "
                   "and go ahead of you; it assumes you stay on the list."),
        "month": "{month_name} {year}",
    },
}
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
THIN_HISTORY_MONTHS = 6


def month_label(on: date, lang: str) -> str:
    """A month as a parent reads it (2027년 3월, March 2027)."""
    return WORDS[lang]["month"].format(year=on.year, month=on.month, month_name=MONTH_NAMES[on.month - 1])


def describe(fc: Forecast, lang: str) -> dict[str, str]:
    """The forecast in plain words: ``summary`` (the chances by month), ``basis`` (the data it rests on) and
    ``limits`` (what it cannot know)."""
    w = WORDS[lang]
    parts = []
    for level in fc.levels:
        when = fc.dates[level]
        pct = round(level * 100)
        if when is None:
            parts.append(w["beyond"].format(pct=pct, months=fc.horizon_months))
        else:
            parts.append(w["level"].format(pct=pct, month=month_label(when, lang)))
    if any(fc.dates[level] is None for level in fc.levels):
        parts.append(w["chance_at_horizon"].format(months=fc.horizon_months,
                                                   pct=round(fc.curve[-1][1] * 100)))
    summary = w["levels_joined"].join(parts)
    summary = summary[:1].upper() + summary[1:]
    thin = fc.months_observed < THIN_HISTORY_MONTHS
    basis = w["basis_thin" if thin else "basis"].format(observed=round(fc.months_observed), offers=fc.offers_seen
                                                       + fc.march_offers_seen, march=fc.march_offers_seen,
                                                       pooled=fc.pooled_centres)
    return {"summary": summary + ".", "basis": basis, "limits": w["limits"]}
