"""Authorisation decided in one place: which role may do what on which resource.

Every router asks ``authorize`` (through ``api.security``); nothing else compares roles. Rules:

- ``parent``: their own account and their own tokens; reads of public data (no rule needed).
- ``centre_staff``: report vacancy for, and read the history of, the centres they are bound to; nothing else.
- ``district_officer``: read (never write) vacancy, history and staleness of every centre in their 구.
- ``city_admin``: everything, including creating staff, officers and admins, and reading the audit log.
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
    if action is Action.report_vacancy:
        return subject.role is Role.centre_staff and res.facility_id in subject.facility_ids
    if action is Action.read_centre_history:
        if subject.role is Role.centre_staff:
            return res.facility_id in subject.facility_ids
        if subject.role is Role.district_officer:
            return res.district_code is not None and res.district_code == subject.district_code
        return False
    if action is Action.read_district:
        return (subject.role is Role.district_officer and res.district_code is not None
                and res.district_code == subject.district_code)
    # manage_users, read_audit, run_sync: city admins only.
    return False


def authorize(subject: Subject, action: Action, resource: Resource | None = None) -> None:
    """Raise ``Forbidden`` unless ``is_allowed``."""
    if not is_allowed(subject, action, resource):
        what = action.value.replace("_", " ")
        raise Forbidden(f"role {subject.role.value} may not {what} here", action=action.value)
