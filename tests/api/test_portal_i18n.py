"""The portal's catalogs: every message the templates and pages use (extracted as ``pybabel extract`` does with
api/portal/babel.cfg) is in each language's catalog, translated in ko / zh / vi with the same placeholders, and no
catalog keeps messages that are no longer used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from api.portal.i18n import LANGUAGES, LOCALES_DIR, Translator, negotiate, parse_accept_language
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
    with Path(LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    held = {m.id: m.string for m in catalog if m.id}
    assert set(held) == used
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
