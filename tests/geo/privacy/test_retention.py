"""Retention: ``purge`` pseudonymises what is past its period at the injected ``now`` and keeps the rest; rows stay
(statistics), only personal fields go; a second purge changes nothing; a later clock purges the newer rows too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.booking.outbox import enqueue
from geo.privacy.retention import purge
from geo.settings import Settings
from tests.booking_util import make_centre, make_slot, make_user

DAY = timedelta(days=1)
PHONE_OLD, PHONE_NEW = "010-1111-0000", "010-9999-0000"


def _seed(conn: Connection, settings: Settings, now: datetime, sink: Path) -> dict[str, dict[str, int]]:
    """One row of each kind just past its retention ("old") and one just inside it ("new")."""
    p = settings.privacy
    age = {"texts": timedelta(days=p.outbox_days), "bookings": timedelta(days=p.bookings_days),
           "audit": timedelta(days=p.audit_personal_days), "failures": timedelta(days=p.login_failures_days)}
    when = {kind: {"old": now - a - DAY, "new": now - a + DAY} for kind, a in age.items()}
    centre = make_centre(conn, "T-RET-1")
    parent = make_user(conn, "retention@example.kr", "parent")
    ids: dict[str, dict[str, int]] = {k: {} for k in ("texts", "bookings", "requests", "audit")}
    for label, phone in (("old", PHONE_OLD), ("new", PHONE_NEW)):
        key = enqueue(conn, key=f"t:{label}", recipient=phone, lang="ko", template="booked", centre="c",
                      when="w", booking_id=1)
        assert key is not None
        conn.execute(text("UPDATE notification_outbox SET status = 'sent', sent_at = :at, created_at = :at "
                          "WHERE id = :id"), {"at": when["texts"][label], "id": key})
        ids["texts"][label] = key
        ends = when["bookings"][label]
        slot = make_slot(conn, centre, places_by_age={"2": 5})
        conn.execute(text("UPDATE booking_slots SET starts_at = :s, ends_at = :e WHERE id = :id"),
                     {"s": ends - timedelta(hours=10), "e": ends, "id": slot})
        ids["bookings"][label] = conn.execute(text(
            "INSERT INTO bookings (slot_id, parent_user_id, child_age, child_name, phone, status) "
            "VALUES (:s, :p, 2, '홍길순', :phone, 'confirmed') RETURNING id"),
            {"s": slot, "p": parent, "phone": phone}).scalar_one()
        ids["requests"][label] = conn.execute(text(
            "INSERT INTO emergency_requests (parent_user_id, child_age, phone, lon, lat, radius_m, needed_from, "
            "needed_until) VALUES (:p, 2, :phone, 126.912345, 37.556789, 3000, :f, :u) RETURNING id"),
            {"p": parent, "phone": phone, "f": ends - timedelta(hours=12), "u": ends}).scalar_one()
        audit_id = audit(conn, actor_user_id=parent, action="identity.verify", entity="users", entity_id=parent,
                         before={"verified_name": None}, after={"verified_name": "김부모", "verified_phone": phone,
                                                                "identity_provider": "local"})
        conn.execute(text("UPDATE audit_log SET at = :at WHERE id = :id"), {"at": when["audit"][label], "id": audit_id})
        ids["audit"][label] = audit_id
        conn.execute(text("INSERT INTO login_failures (email, client_ip, at) VALUES (:e, '10.0.0.1', :at)"),
                     {"e": f"{label}@example.kr", "at": when["failures"][label]})
    with sink.open("w", encoding="utf-8") as fh:
        for label, phone in (("old", PHONE_OLD), ("new", PHONE_NEW)):
            fh.write(json.dumps({"idempotency_key": f"t:{label}", "to": phone, "body": "b",
                                 "at": when["texts"][label].isoformat()}) + "\n")
    return ids


def _state(conn: Connection, ids: dict[str, dict[str, int]]) -> dict[str, object]:
    def one(sql: str, row_id: int) -> tuple:
        return tuple(conn.execute(text(sql), {"id": row_id}).one())

    return {label: {
        "text": one("SELECT recipient, body <> '' FROM notification_outbox WHERE id = :id", ids["texts"][label]),
        "booking": one("SELECT child_name, phone, status FROM bookings WHERE id = :id", ids["bookings"][label]),
        "request": one("SELECT phone, lon, lat FROM emergency_requests WHERE id = :id", ids["requests"][label]),
        "audit": one("SELECT after->>'verified_name', after->>'verified_phone', after->>'identity_provider', action "
                     "FROM audit_log WHERE id = :id", ids["audit"][label]),
        "failure": conn.execute(text("SELECT count(*) FROM login_failures WHERE email = :e"),
                                {"e": f"{label}@example.kr"}).scalar_one(),
    } for label in ("old", "new")}


def test_purge_removes_old_personal_fields_and_keeps_new_ones(settings: Settings, connection: Connection,
                                                              tmp_path: Path) -> None:
    conn, now = connection, datetime.now(UTC)
    sink = tmp_path / "sms-outbox.jsonl"
    ids = _seed(conn, settings, now, sink)
    result = purge(conn, settings, now=now, sink_path=sink)
    assert result.as_dict() == {"texts": 1, "bookings": 1, "emergency_requests": 1, "audit_rows": 1,
                                "login_failures": 1, "sink_lines": 1}
    state = _state(conn, ids)
    assert state["old"] == {"text": ("", False), "booking": (None, "", "confirmed"),
                            "request": ("", 126.91, 37.56),
                            "audit": ("erased", "erased", "local", "identity.verify"), "failure": 0}
    assert state["new"] == {"text": (PHONE_NEW, True), "booking": ("홍길순", PHONE_NEW, "confirmed"),
                            "request": (PHONE_NEW, 126.912345, 37.556789),
                            "audit": ("김부모", PHONE_NEW, "local", "identity.verify"), "failure": 1}
    lines = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()]
    assert [line["to"] for line in lines] == [PHONE_NEW]
    # Idempotent: nothing more at the same time.
    assert set(purge(conn, settings, now=now, sink_path=sink).as_dict().values()) == {0}
    # Two days later by the injected clock the "new" rows are past their periods too.
    later = purge(conn, settings, now=now + 2 * DAY, sink_path=sink)
    assert set(later.as_dict().values()) == {1}
    assert _state(conn, ids)["new"] == state["old"]


def test_retention_periods_are_settings(settings: Settings, connection: Connection, tmp_path: Path) -> None:
    """A shorter period in the settings purges rows the default keeps."""
    now = datetime.now(UTC)
    ids = _seed(connection, settings, now, tmp_path / "s.jsonl")
    short = settings.updated(DOLBOM_RETAIN_OUTBOX_DAYS=1, DOLBOM_RETAIN_BOOKINGS_DAYS=1,
                             DOLBOM_RETAIN_AUDIT_PERSONAL_DAYS=1, DOLBOM_RETAIN_LOGIN_FAILURES_DAYS=1)
    assert purge(connection, short, now=now).as_dict() == {"texts": 2, "bookings": 2, "emergency_requests": 2,
                                                            "audit_rows": 2, "login_failures": 2, "sink_lines": 0}
    assert _state(connection, ids)["new"]["booking"] == (None, "", "confirmed")
