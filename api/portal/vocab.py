"""Words of the domain as the pages say them (message ids for the catalogs): priority categories, entry statuses."""

from __future__ import annotations


def _(message: str) -> str:
    """Mark a message for extraction (translated when shown)."""
    return message


CATEGORY_LABELS: dict[str, str] = {
    "basic_livelihood": _("Basic livelihood security recipient"),
    "single_parent_protected": _("Single-parent family under protection"),
    "near_poverty": _("Near-poverty household"),
    "disabled_parent_or_sibling": _("Parent or sibling with a disability"),
    "child_welfare_facility": _("Child in a child welfare facility"),
    "national_merit": _("Child of a person of national merit"),
    "dual_income": _("Dual-income parents (job seeking included)"),
    "multicultural": _("Multicultural family"),
    "type1_diabetes": _("Child with type 1 diabetes"),
    "multi_child": _("Three or more children, or two infants"),
    "industrial_complex_resident": _("Resident of the centre's industrial complex or housing complex"),
    "other_single_parent_grandparent_adoptive": _("Other single-parent, grandparent or adoptive family"),
    "sibling_enrolled": _("A sibling is enrolled at a centre"),
}
STATUS_LABELS: dict[str, str] = {
    "waiting": _("waiting"),
    "offered": _("place offered"),
    "admitted": _("admitted"),
    "withdrawn": _("withdrawn"),
    "lapsed": _("lapsed"),
    "dropped": _("dropped"),
    "declined": _("declined"),
    "expired": _("expired"),
}
# The waitlist's notices to a parent (geo.admission.lifecycle.notice kinds).
NOTICE_LABELS: dict[str, str] = {
    "offer": _("A place was offered to you: answer it on this page before its deadline."),
    "dropped": _("An application was not renewed for the new year and has been dropped."),
}
