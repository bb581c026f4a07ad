"""The authorisation table, exhaustively: every role x action x (own / other resource)."""

from __future__ import annotations

import itertools

import pytest

from geo.auth.policy import Action, Resource, Role, Subject, authorize, is_allowed
from geo.errors import Forbidden

OWN = Resource(facility_id=1, district_code="11440")
OTHER = Resource(facility_id=2, district_code="11680")
SUBJECTS = {
    Role.parent: Subject(user_id=1, role=Role.parent),
    Role.centre_staff: Subject(user_id=2, role=Role.centre_staff, facility_ids=frozenset({1})),
    Role.district_officer: Subject(user_id=3, role=Role.district_officer, district_code="11440"),
    Role.city_admin: Subject(user_id=4, role=Role.city_admin),
}
# (role, action) -> allowed on (own, other); written out by hand from the rules.
ALLOWED = {
    (Role.centre_staff, Action.report_vacancy): (True, False),
    (Role.centre_staff, Action.read_centre_history): (True, False),
    (Role.district_officer, Action.read_centre_history): (True, False),
    (Role.district_officer, Action.read_district): (True, False),
    # Booking (issue 12): staff manage their own centre's slots and bookings; parents book anywhere.
    (Role.centre_staff, Action.manage_bookings): (True, False),
    (Role.parent, Action.book_care): (True, True),
    (Role.parent, Action.apply_waitlist): (True, True),
    (Role.centre_staff, Action.manage_waitlist): (True, False),
    (Role.centre_staff, Action.read_waitlist): (True, False),
    (Role.district_officer, Action.read_waitlist): (True, False),
    # The city's side (issue 23): officers keep their 구's designations; staff declare their languages.
    (Role.district_officer, Action.manage_designations): (True, False),
    (Role.centre_staff, Action.declare_languages): (True, False),
    # Inspections (issue 23): officers plan and read their 구's; staff read and answer their centres' findings.
    (Role.district_officer, Action.plan_inspections): (True, False),
    (Role.district_officer, Action.read_inspections): (True, False),
    (Role.centre_staff, Action.read_inspections): (True, False),
    (Role.centre_staff, Action.answer_findings): (True, False),
    # Sanctions and their disclosure (issue 23): the officer of the centre's 구 (and the city).
    (Role.district_officer, Action.manage_sanctions): (True, False),
}


@pytest.mark.parametrize(("role", "action"), list(itertools.product(Role, Action)))
def test_rule_table(role: Role, action: Action) -> None:
    subject = SUBJECTS[role]
    expected = (True, True) if role is Role.city_admin else ALLOWED.get((role, action), (False, False))
    assert (is_allowed(subject, action, OWN), is_allowed(subject, action, OTHER)) == expected
    for resource, allowed in zip((OWN, OTHER), expected, strict=True):
        if allowed:
            authorize(subject, action, resource)
        else:
            with pytest.raises(Forbidden):
                authorize(subject, action, resource)
