"""Authorisation decided in one place: which role may do what on which resource.

Every router asks ``authorize`` (through ``api.security``); nothing else compares roles. Rules:

- ``parent``: their own account and their own tokens; reads of public data (no rule needed); booking care
  slots and emergency requests for their children.
- ``centre_staff``: report vacancy for, declare the languages of their staff at, read the history of, and
  publish booking slots, see and confirm the bookings of, and accept emergency requests for the centres they
  are bound to; nothing else.
- ``district_officer``: read (never write) vacancy, history and staleness of every centre in their 구; keep the
  register of service designations of the centres of their 구; record the sanctions against the centres of their 구
  and publish or withdraw their disclosure (위반사실 공표).
- ``city_admin``: everything, including creating staff, officers and admins, reading the audit log and resetting
  an account's 본인인증 (the only way to verify an account as another person).

Waitlist: only a parent applies (for their own children; ownership is checked with the child); staff of a centre
verify claims, offer places and read its named waitlist; a 구's officer reads the named waitlists of its centres;
corrections with a reason are a city admin's.

Inspections (지도점검): a 구's officer plans, records, orders and closes the inspections of its centres
(``plan_inspections``) and reads them; a centre's staff read the findings of their centres and answer the orders
(``answer_findings``); nobody else but a city admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo.errors import Forbidden


class Role(StrEnum):
    """Account roles."""

    parent = "parent"
    centre_staff = "centre_staff"
    district_officer = "district_officer"
    city_admin = "city_admin"


class Action(StrEnum):
    """Protected actions."""

    report_vacancy = "report_vacancy"
    read_centre_history = "read_centre_history"
    read_district = "read_district"
    manage_users = "manage_users"
    read_audit = "read_audit"
    run_sync = "run_sync"
    manage_bookings = "manage_bookings"
    book_care = "book_care"
    apply_waitlist = "apply_waitlist"
    manage_waitlist = "manage_waitlist"
    read_waitlist = "read_waitlist"
    correct_waitlist = "correct_waitlist"
    reset_identity = "reset_identity"
    manage_designations = "manage_designations"
    declare_languages = "declare_languages"
    plan_inspections = "plan_inspections"
    read_inspections = "read_inspections"
    answer_findings = "answer_findings"
    manage_sanctions = "manage_sanctions"


@dataclass(frozen=True)
class Resource:
    """What an action is applied to: a centre (id + its 구) or a 구."""

    facility_id: int | None = None
    district_code: str | None = None


@dataclass(frozen=True)
class Subject:
    """Who acts: role and bindings (centres for staff, 구 for officers)."""

    user_id: int
    role: Role
    facility_ids: frozenset[int] = frozenset()
    district_code: str | None = None


def is_allowed(subject: Subject, action: Action, resource: Resource | None = None) -> bool:
    """Whether ``subject`` may do ``action`` on ``resource`` (the whole rule table)."""
    if subject.role is Role.city_admin:
        return True
    res = resource or Resource()
    if action in (Action.report_vacancy, Action.manage_bookings, Action.declare_languages):
        return subject.role is Role.centre_staff and res.facility_id in subject.facility_ids
    if action is Action.book_care:
        return subject.role is Role.parent
    if action is Action.read_centre_history:
        if subject.role is Role.centre_staff:
            return res.facility_id in subject.facility_ids
        if subject.role is Role.district_officer:
            return res.district_code is not None and res.district_code == subject.district_code
        return False
    if action is Action.answer_findings:
        return subject.role is Role.centre_staff and res.facility_id in subject.facility_ids
    if action is Action.read_inspections:
        if subject.role is Role.centre_staff:
            return res.facility_id is not None and res.facility_id in subject.facility_ids
        return (subject.role is Role.district_officer and res.district_code is not None
                and res.district_code == subject.district_code)
    if action in (Action.read_district, Action.manage_designations, Action.plan_inspections,
                  Action.manage_sanctions):
        return (subject.role is Role.district_officer and res.district_code is not None
                and res.district_code == subject.district_code)
    if action is Action.apply_waitlist:
        return subject.role is Role.parent
    if action is Action.manage_waitlist:
        return subject.role is Role.centre_staff and res.facility_id in subject.facility_ids
    if action is Action.read_waitlist:
        if subject.role is Role.centre_staff:
            return res.facility_id in subject.facility_ids
        if subject.role is Role.district_officer:
            return res.district_code is not None and res.district_code == subject.district_code
        return False
    # manage_users, read_audit, run_sync, correct_waitlist, reset_identity: city admins only.
    return False


def authorize(subject: Subject, action: Action, resource: Resource | None = None) -> None:
    """Raise ``Forbidden`` unless ``is_allowed``."""
    if not is_allowed(subject, action, resource):
        what = action.value.replace("_", " ")
        raise Forbidden(f"role {subject.role.value} may not {what} here", action=action.value)
