"""The wait forecast in plain words, in the portal's four languages (Korean, English, Chinese, Vietnamese), in one
place.

Every string a parent reads about a forecast is a template of ``WORDS``; ``describe`` fills them in.
"""

from __future__ import annotations

from datetime import date

from geo.admission.forecast import Forecast

LANGUAGES = ("ko", "en", "zh", "vi")

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
    "zh": {
        "level": "到{month}获得入园名额的可能性约为{pct}%",
        "levels_joined": "；",
        "beyond": "{months}个月内达不到{pct}%（届时约为{chance}%）",
        "unlikely": "今后{months}个月内获得入园名额的可能性约为{chance}%，不到一半",
        "basis": ("根据本园此班过去{observed}个月的记录（{offers}个名额，其中3月{march}个）以及同区{pooled}家"
                  "类似{centres}的记录计算。"),
        "basis_thin": ("本园此班的记录较短（{observed}个月，{offers}个名额），预测主要依据同区{pooled}家类似"
                       "{centres}的记录。"),
        "basis_alone": ("根据本园此班过去{observed}个月的记录（{offers}个名额）计算；同区没有类似的托儿所有记录，"
                        "记录较短时预测非常不确定。"),
        "centres_one": "托儿所",
        "centres_many": "托儿所",
        "limits": ("这只是预测，不是承诺：如果之后有优先级更高的孩子申请并排在您前面，可能会推迟；"
                   "并假定您一直在候补名单上。"),
        "month": "{year}年{month}月",
    },
    "vi": {
        "level": "khoảng {pct}% khả năng được mời nhập học trước {month}",
        "levels_joined": "; ",
        "beyond": "không đạt {pct}% trong vòng {months} tháng (khoảng {chance}% đến lúc đó)",
        "unlikely": "khả năng được mời trong {months} tháng tới dưới một nửa: khoảng {chance}%",
        "basis": ("Dựa trên {observed} tháng lời mời của lớp này tại nhà trẻ ({offers} lời mời, {march} trong tháng "
                  "3) và dữ liệu của {pooled} {centres} tương tự trong quận."),
        "basis_thin": ("Dữ liệu của lớp này tại nhà trẻ còn ngắn ({observed} tháng, {offers} lời mời), nên dự báo "
                       "chủ yếu dựa vào {pooled} {centres} tương tự trong quận."),
        "basis_alone": ("Dựa trên {observed} tháng lời mời của lớp này tại nhà trẻ ({offers} lời mời); không có nhà "
                        "trẻ tương tự nào trong quận có dữ liệu, nên dữ liệu ngắn làm dự báo rất không chắc chắn."),
        "centres_one": "nhà trẻ",
        "centres_many": "nhà trẻ",
        "limits": ("Đây là dự báo, không phải lời hứa: có thể muộn hơn nếu trẻ có ưu tiên cao hơn đăng ký sau và "
                   "xếp trước bạn; giả định bạn vẫn ở trong danh sách chờ."),
        "month": "tháng {month}/{year}",
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
