"""Translations of the portal: gettext catalogs (``locales/<lang>/LC_MESSAGES/*.po``, English message ids; one file
per area of the portal, ``messages.po`` for the shared and parent pages, each message in exactly one file), compiled
in memory when the process starts (no ``.mo`` build step, nothing to drift from the ``.po`` files), and
the choice of a request's language: the ``dolbom_lang`` cookie (the language switcher), then ``Accept-Language``,
then Korean.

Extraction: ``pybabel extract -F api/portal/babel.cfg -o messages.pot api`` and ``pybabel update`` (docs/portal.md);
``tests/api/test_portal_i18n.py`` checks that every message in the templates and pages is in every catalog.
"""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: dict[str, str] = {"ko": "한국어", "en": "English", "zh": "中文", "vi": "Tiếng Việt"}
DEFAULT_LANGUAGE = "ko"
LANG_COOKIE = "dolbom_lang"
# The map's page keeps its language in localStorage under this name; the portal reads the cookie it also sets.


def catalog_files(lang: str) -> list[Path]:
    """The ``.po`` files of ``lang``, one per area of the portal, in name order."""
    return sorted((LOCALES_DIR / lang / "LC_MESSAGES").glob("*.po"))


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled catalog of ``lang`` (one of ``LANGUAGES``), built once per process from its ``.po`` files."""
    merged: Translations | None = None
    for path in catalog_files(lang):
        with path.open("rb") as po:
            catalog = read_po(po, locale=lang)
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        part = Translations(fp=buffer, domain="messages")
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    if merged is None:
        raise FileNotFoundError(f"no catalog for {lang} under {LOCALES_DIR}")
    return merged


def parse_accept_language(header: str) -> list[str]:
    """Primary language subtags of an ``Accept-Language`` header, by decreasing q (``q=0`` dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, n, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(*, cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the user's choice (cookie), else the first of ``Accept-Language`` we speak."""
    if cookie in LANGUAGES:
        return str(cookie)
    for tag in parse_accept_language(accept_language or ""):
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


class Translator:
    """``_`` of the templates and pages in one language: ``_("Rank {rank} of {of}", rank=3, of=9)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._translations = translations(lang)

    def __call__(self, message: str, **params: Any) -> str:
        text = self._translations.gettext(message)
        return text.format(**params) if params else text
