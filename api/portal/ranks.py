"""The waitlist's rank words in the reader's language: the public band (``1순위 200-299``) and the reasons of a rank
change, which ``geo.admission.ranking.explain_changes`` words in English for the API. A sentence of a shape not
known here is shown as the domain wrote it (``tests/api/test_portal_i18n.py`` checks every shape it writes)."""

from __future__ import annotations

import re
from collections.abc import Callable

from api.portal.messages import Gettext
from api.portal.vocab import CATEGORY_LABELS

BAND = re.compile(r"^(?:(?P<tier>\d+)순위|(?P<general>일반)) (?P<low>\d+)-(?P<high>\d+)$")


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


# (pattern of the domain's English sentence, the message that says it)
CHANGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^an entry's priority changed to (?P<band>.+) \((?P<what>.*)\) and now ranks above you$"),
     _("Another application's priority changed to {band} ({what}); it now ranks above yours.")),
    (re.compile(r"^an application with (?P<band>.+) \((?P<what>.*)\) of (?P<when>\d\d-\d\d) ranked above you$"),
     _("A new application with {band} ({what}) of {when} ranks above yours.")),
    (re.compile(r"^an entry ahead of you left the list \(admitted, withdrawn or not renewed\)$"),
     _("An application ahead of yours left the list (admitted, withdrawn or not renewed).")),
    (re.compile(r"^an entry ahead of you now ranks below you$"),
     _("An application ahead of yours now ranks below it.")),
    (re.compile(r"^your priority is now (?P<band>.+)$"),
     _("Your priority is now {band}.")),
]


def band_text(t: Gettext, band: str) -> str:
    """``1순위 200-299`` as "priority 1, 200-299 points" in the reader's language."""
    match = BAND.match(band)
    if match is None:
        return band
    if match["general"]:
        return t("General, {low}-{high} points", low=match["low"], high=match["high"])
    return t("Priority {tier}, {low}-{high} points", tier=match["tier"], low=match["low"], high=match["high"])


def change_text(t: Gettext, line: str) -> str:
    """One reason of a rank change in the reader's language."""
    for pattern, message in CHANGES:
        match = pattern.match(line)
        if match is None:
            continue
        params = match.groupdict()
        if "band" in params:
            params["band"] = band_text(t, params["band"])
        if "what" in params:
            what = [c.strip() for c in params["what"].split(",") if c.strip()]
            params["what"] = ", ".join(t(CATEGORY_LABELS[c]) if c in CATEGORY_LABELS else c for c in what) \
                if what != ["no priority category"] else t("no priority category")
        return t(message, **params)
    return line


def bound(t: Gettext) -> dict[str, Callable[[str], str]]:
    """The template functions ``band`` and ``change`` in ``t``'s language."""
    return {"band": lambda value: band_text(t, value), "change": lambda value: change_text(t, value)}
