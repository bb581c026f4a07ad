"""The inspection checklist as data, one JSON file per version (``geo/inspections/checklists/<version>.json``),
kept like the admission rules: a changed 지도점검 checklist is a new file, not code. Each inspection stores the
version and the file's SHA-256 it was recorded against, so a later edit of a file is visible.

Every item has a code, Korean and English text and its legal basis (영유아보육법 articles), with ``confirmed``
saying whether the article was checked against a source (see the file's ``source``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from geo.errors import NotFound

CHECKLIST_DIR = Path(__file__).resolve().parent / "checklists"
RESULTS = ("compliant", "violation", "not_checked")


@dataclass(frozen=True)
class Item:
    """One checklist item."""

    code: str
    ko: str
    en: str
    basis: str
    confirmed: bool


@dataclass(frozen=True)
class Checklist:
    """A version of the checklist."""

    version: int
    sha256: str
    source: str
    items: tuple[Item, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """The item codes in checklist order."""
        return tuple(i.code for i in self.items)

    def item(self, code: str) -> Item:
        """The item ``code``; ``NotFound`` otherwise."""
        for item in self.items:
            if item.code == code:
                return item
        raise NotFound(f"no checklist item {code!r} in version {self.version}", param="item", value=code)


def available_versions() -> list[int]:
    """Versions that have a checklist file."""
    return sorted(int(p.stem) for p in CHECKLIST_DIR.glob("*.json") if p.stem.isdigit())


def checklist_sha256(version: int) -> str:
    """SHA-256 of a version's file (what an inspection records)."""
    return hashlib.sha256((CHECKLIST_DIR / f"{version}.json").read_bytes()).hexdigest()


@lru_cache
def checklist(version: int | None = None) -> Checklist:
    """Checklist ``version`` (the latest when None); ``NotFound`` when there is no such file."""
    versions = available_versions()
    chosen = max(versions) if version is None and versions else version
    if chosen not in versions:
        raise NotFound(f"no inspection checklist version {version}", param="version", value=version)
    assert chosen is not None
    raw = json.loads((CHECKLIST_DIR / f"{chosen}.json").read_text(encoding="utf-8"))
    items = tuple(Item(i["code"], i["ko"], i["en"], i["basis"], bool(i["confirmed"])) for i in raw["items"])
    if len({i.code for i in items}) != len(items):
        raise ValueError(f"checklist {chosen}: duplicate item codes")
    return Checklist(version=int(raw["version"]), sha256=checklist_sha256(chosen), source=raw["source"], items=items)
