"""Helpers for account tests: users of every role bound to real centres, and bearer headers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from geo.auth.accounts import create_user, issue_token
from geo.settings import Settings
from tests.booking_util import verify

PASSWORD = "correct horse battery"


@dataclass
class Centre:
    """A real centre of the loaded data."""

    id: int
    code: str
    district_code: str
    capacity: int
    classes_by_age: dict


@dataclass
class Cast:
    """One user per role, two centres in two different 구, tokens as headers."""

    own: Centre
    other: Centre
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]


def pick_centres(conn: Connection) -> tuple[Centre, Centre]:
    """Two operating centres in different 구 with classes for ages 0-2 (deterministic: lowest codes)."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (district_code) id, code, district_code, capacity, classes_by_age FROM facilities
        WHERE status = 'active' AND capacity >= 20 AND district_code IS NOT NULL
          AND (classes_by_age->>'0')::int >= 1 AND (classes_by_age->>'2')::int >= 1
        ORDER BY district_code, code LIMIT 2
    """)).all()
    assert len(rows) == 2
    return tuple(Centre(r.id, r.code, r.district_code, r.capacity, r.classes_by_age) for r in rows)  # type: ignore[return-value]


def make_cast(conn: Connection, settings: Settings, *, verified_parent: bool = False) -> Cast:
    """Admin, parent, staff of ``own``, officer of ``own``'s 구, all with bearer tokens.

    The parent is not verified (본인인증) unless ``verified_parent``: booking, emergency requests and the
    waitlist refuse them until then.
    """
    own, other = pick_centres(conn)
    ids = {
        "admin": create_user(conn, email="admin@example.kr", password=PASSWORD, role="city_admin"),
        "parent": create_user(conn, email="parent@example.kr", password=PASSWORD, role="parent"),
        "staff": create_user(conn, email="staff@example.kr", password=PASSWORD, role="centre_staff",
                             facility_codes=[own.code]),
        "officer": create_user(conn, email="officer@example.kr", password=PASSWORD, role="district_officer",
                               district_code=own.district_code),
    }
    if verified_parent:
        verify(conn, ids["parent"], name="김부모")
    headers = {name: {"Authorization": "Bearer " + issue_token(conn, settings, user_id=uid, kind="bearer").secret}
               for name, uid in ids.items()}
    return Cast(own=own, other=other, headers=headers, ids=ids)


def valid_report(centre: Centre) -> dict:
    """A report that fits the centre: one child in each of its 0/1/2세 classes, one free 0세 place."""
    classes = centre.classes_by_age
    enrolled = {g: 1 for g in ("0", "1", "2") if int(classes.get(g) or 0) > 0}
    return {"enrolled_by_age": enrolled, "free_by_age": {"0": 1}}


def mail_to(conn: Connection, email: str, template: str) -> list[str]:
    """Bodies of the account mails of ``template`` queued to ``email`` (the outbox, as the file sink gets them)."""
    return list(conn.execute(text("SELECT body FROM notification_outbox WHERE recipient = :e AND template = :t "
                                  "ORDER BY id"), {"e": email, "t": template}).scalars())


def mailed_token(conn: Connection, email: str, template: str = "confirm_email") -> str:
    """The token of the last ``template`` mail to ``email``."""
    import re

    bodies = mail_to(conn, email, template)
    assert bodies, f"no {template} mail to {email}"
    found = re.search(r'"token": "([^"]+)"', bodies[-1])
    assert found, bodies[-1]
    return found.group(1)
