"""The audit trail: every write records who, when, what and the previous value, in the writer's transaction."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text


def audit(conn: Connection, *, actor_user_id: int | None, action: str, entity: str, entity_id: object,
          before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """Append one audit row (in ``conn``'s transaction, so it commits or rolls back with the write).

    Parameters
    ----------
    actor_user_id
        The user who made the change; None for system jobs (sync, CLI bootstrap).
    action
        What was done, e.g. ``"user.create"``, ``"vacancy.report"``, ``"token.revoke"``.
    entity, entity_id
        The table-level name and key of what changed.
    before, after
        The previous and the new values (JSON-serialisable; secrets never included).
    """
    return int(conn.execute(
        text("INSERT INTO audit_log (actor_user_id, action, entity, entity_id, before, after) "
             "VALUES (:actor, :action, :entity, :entity_id, :before, :after) RETURNING id"),
        {"actor": actor_user_id, "action": action, "entity": entity,
         "entity_id": None if entity_id is None else str(entity_id),
         "before": None if before is None else Jsonb(before), "after": None if after is None else Jsonb(after)},
    ).scalar_one())
