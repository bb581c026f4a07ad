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
        "beyond": "{months}개월 안에 {pct}%에는 이르지 못합니다(그때까지 약 {chance}%)",
        "unlikely": "앞으로 {months}개월 안에 입소 제안을 받을 가능성은 약 {chance}%로 절반이 되지 않습니다",
        "basis": ("이 어린이집 이 반의 지난 {observed}개월 기록(제안 {offers}건, 그중 3월 {march}건)과 같은 구의 "
                  "비슷한 어린이집 {pooled}곳의 기록으로 계산했습니다."),
        "basis_thin": ("이 어린이집 이 반의 기록이 짧아({observed}개월, 제안 {offers}건) 같은 구의 비슷한 어린이집 "
                       "{pooled}곳의 기록에 주로 기대고 있습니다."),
        "basis_alone": ("이 어린이집 이 반의 지난 {observed}개월 기록(제안 {offers}건)으로 계산했습니다. "
                        "같은 구에 기록이 있는 비슷한 어린이집이 없어, 기록이 짧으면 예측이 매우 불확실합니다."),
        "centres_one": "곳",
        "centres_many": "곳",
        "limits": ("예측일 뿐 약속이 아닙니다. 나중에 더 높은 순위로 신청하는 아이가 앞에 들어오면 늦어질 수 있고, "
                   "대기를 유지한다고 가정합니다."),
        "month": "{year}년 {month}월",
    },
    "en": {
        "level": "about {pct}% chance of an offer by {month}",
        "levels_joined": "; ",
        "beyond": "{pct}% is not reached within {months} months (about {chance}% by then)",
        "unlikely": "an offer within the next {months} months is less likely than not: about {chance}%",
        "basis": ("Based on {observed} months of this centre's offers for this class ({offers} offers, {march} of "
                  "them in March) and the records of {pooled} similar {centres} in the district."),
        "basis_thin": ("This centre's record for this class is short ({observed} months, {offers} offers), so the "
                       "forecast leans mostly on {pooled} similar {centres} in the district."),
        "basis_alone": ("Based on {observed} months of this centre's offers for this class ({offers} offers); no "
                        "similar centre in the district has a record, so a short record makes it very uncertain."),
        "centres_one": "centre",
        "centres_many": "centres",
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
    chance = round(fc.curve[-1][1] * 100)
    parts = []
    for level in fc.levels:
        when = fc.dates[level]
        pct = round(level * 100)
        if when is not None:
            parts.append(w["level"].format(pct=pct, month=month_label(when, lang)))
        elif parts:
            parts.append(w["beyond"].format(pct=pct, months=fc.horizon_months, chance=chance))
    if not parts:
        parts.append(w["unlikely"].format(months=fc.horizon_months, chance=chance))
    summary = w["levels_joined"].join(parts)
    summary = summary[:1].upper() + summary[1:]
    if fc.pooled_centres == 0:
        template = "basis_alone"
    else:
        template = "basis_thin" if fc.months_observed < THIN_HISTORY_MONTHS else "basis"
    basis = w[template].format(observed=round(fc.months_observed), offers=fc.offers_seen + fc.march_offers_seen,
                               march=fc.march_offers_seen, pooled=fc.pooled_centres,
                               centres=w["centres_one" if fc.pooled_centres == 1 else "centres_many"])
    return {"summary": summary + ".", "basis": basis, "limits": w["limits"]}
