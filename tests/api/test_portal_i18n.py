"""The portal's catalogs: every message the templates and pages use (extracted as ``pybabel extract`` does with
api/portal/babel.cfg) is in each language's catalog, translated in ko / zh / vi with the same placeholders, and no
catalog keeps messages that are no longer used."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from api.portal.i18n import LANGUAGES, Translator, catalog_files, negotiate, parse_accept_language
from api.portal.ranks import band_text, change_text
from geo.admission.ranking import RankedEntry, explain_changes
from geo.admission.rules import Priority
from geo.settings import PROJECT_ROOT

PLACEHOLDER = re.compile(r"\{(\w+)\}")
METHOD_MAP = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def _used() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "t": None}
    found: set[str] = set()
    for folder in (PROJECT_ROOT / "api" / "portal", PROJECT_ROOT / "api" / "routers"):
        for _file, _line, message, _comments, _context in extract_from_dir(str(folder), METHOD_MAP,
                                                                           keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_catalog_complete(lang: str) -> None:
    used = _used()
    assert len(used) > 100
    held: dict[str, str] = {}
    twice: list[str] = []
    files = catalog_files(lang)
    assert [f.name for f in files] == [f.name for f in catalog_files("en")]
    for path in files:
        with Path(path).open("rb") as po:
            catalog = read_po(po)
        for m in catalog:
            if m.id:
                twice += [str(m.id)] if m.id in held else []
                held[str(m.id)] = str(m.string)
    assert twice == []
    assert set(held) - used == set()
    assert used - set(held) == set()
    if lang == "en":
        return
    untranslated = sorted(k for k, v in held.items() if not v)
    assert untranslated == []
    assert [k for k, v in held.items() if set(PLACEHOLDER.findall(k)) != set(PLACEHOLDER.findall(str(v)))] == []


def test_translator_and_negotiation() -> None:
    assert Translator("ko")("Rank {rank} of {of}", rank=2, of=7) == "7명 중 2순위"
    assert Translator("en")("Rank {rank} of {of}", rank=2, of=7) == "Rank 2 of 7"
    assert parse_accept_language("zh-CN;q=0.5, vi, en;q=0") == ["vi", "zh"]
    assert negotiate(cookie=None, accept_language="de, zh-TW;q=0.4") == "zh"
    assert negotiate(cookie="xx", accept_language="de") == "ko"
    assert negotiate(cookie="en", accept_language="vi") == "en"


def test_every_rank_change_reason_is_translated() -> None:
    """Each shape of sentence ``explain_changes`` writes is recognised and said in Korean (not passed through)."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    x = RankedEntry("x", Priority(tier=1, points=200, reasons=("dual_income",)), at)
    y = RankedEntry("y", Priority(tier=1, points=100, reasons=("multicultural",)), at + timedelta(hours=1))
    new = RankedEntry("n", Priority(tier=1, points=300, reasons=("dual_income", "basic_livelihood")),
                      at + timedelta(days=3))
    y_up = RankedEntry("y", Priority(tier=1, points=400, reasons=("multi_child", "dual_income")), y.applied_at)
    lines: list[str] = []
    for before, after in (([x, y], [new, x, y]), ([x, y], [y_up, x]), ([x, y], [y])):
        for reasons in explain_changes(before, after).values():
            lines += reasons
    ko = Translator("ko")
    said = [change_text(ko, line) for line in lines]
    assert len(lines) >= 5 and all(s != line for s, line in zip(said, lines, strict=True)), lines
    assert "03-05에 접수된 1순위 300-399점(맞벌이 (취업준비 포함), 국민기초생활보장 수급자) 신청이 내 신청보다 앞섭니다." in said
    assert band_text(Translator("en"), "일반 0-99") == "General, 0-99 points"
