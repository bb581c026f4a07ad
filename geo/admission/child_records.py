"""A parent's registered children: list them (with or without applications) and remove one that has no live
application. Removing deletes the child, its claims and its finished entries and offers; the centres' public
chains keep their events, which name the entries only by random public ids (never rewritten)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geo.auth.audit import audit
from geo.errors import Conflict, NotFound

LIVE = ("waiting", "offered")


def list_children(conn: Connection, *, parent_user_id: int) -> list[dict[str, Any]]:
    """The parent's children, oldest registration first, with their claims and entry counts by status."""
    rows = conn.execute(text("""
        SELECT ch.id, ch.public_id, ch.name, ch.birth_date, ch.enrolled, ch.created_at,
               COALESCE((SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM waitlist_entries
                         WHERE child_id = ch.id GROUP BY status) s), '{}') AS entries_by_status,
               COALESCE((SELECT array_agg(category ORDER BY category) FROM claims WHERE child_id = ch.id), '{}')
                   AS claims
        FROM children ch WHERE ch.parent_user_id = :p ORDER BY ch.id
    """), {"p": parent_user_id}).mappings().all()
    return [dict(r) | {"live_entries": sum(r["entries_by_status"].get(s, 0) for s in LIVE)} for r in rows]


def remove_child(conn: Connection, *, parent_user_id: int, child_id: int) -> None:
    """Delete one of the parent's children that has no live (waiting or offered) entry; audited without the
    child's name or birth date.

    Raises
    ------
    NotFound
        Not a child of this parent.
    Conflict
        The child still has live entries: withdraw them first.
    """
    row = conn.execute(text("SELECT id, public_id, parent_user_id FROM children WHERE id = :c FOR UPDATE"),
                       {"c": child_id}).first()
    if row is None or row.parent_user_id != parent_user_id:
        raise NotFound(f"no child {child_id} of yours", param="child_id", value=child_id)
    live = conn.execute(text("SELECT public_id FROM waitlist_entries WHERE child_id = :c AND status = ANY(:live) "
                             "ORDER BY id"), {"c": child_id, "live": list(LIVE)}).scalars().all()
    if live:
        raise Conflict(f"child {child_id} still has live entries {list(live)}; withdraw them first",
                       reason="live_entries", entries=list(live))
    finished = conn.execute(text("SELECT count(*) FROM waitlist_entries WHERE child_id = :c"),
                            {"c": child_id}).scalar_one()
    conn.execute(text("DELETE FROM children WHERE id = :c"), {"c": child_id})
    audit(conn, actor_user_id=parent_user_id, action="child.remove", entity="children", entity_id=row.public_id,
          before={"finished_entries": finished}, after=None)
