"""City admin: create staff, officers and admins; read accounts and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import text

from api.deps import AdminUser, SessionDep, WriteRoute, WriteTx
from api.schemas.accounts import AuditOut, UserCreateIn, UserOut
from geo.auth.accounts import create_user, get_user
from geo.validation import MAX_ID, reject_control_characters

router = APIRouter(prefix="/admin", tags=["admin"], route_class=WriteRoute)


@router.post("/users", status_code=201, response_model=UserOut, summary="Create an account (city admin)",
             responses={409: {"description": "E-mail already registered"}})
def create(body: UserCreateIn, admin: AdminUser, tx: WriteTx) -> dict[str, Any]:
    """Centre staff are bound to centres (어린이집코드), district officers to a 구."""
    conn = tx.connection()
    user_id = create_user(conn, email=body.email, password=body.password, role=body.role,
                          display_name=body.display_name, district_code=body.district_code,
                          facility_codes=body.facility_codes, actor_user_id=admin.user_id)
    user = get_user(conn, user_id)
    return user


@router.get("/users/{user_id}", response_model=UserOut, summary="An account (city admin)")
def read(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], admin: AdminUser, session: SessionDep) -> dict[str, Any]:
    """Account fields, never hashes."""
    return get_user(session.connection(), user_id)


@router.get("/audit", response_model=list[AuditOut], summary="The audit log (city admin), newest first")
def audit_log(
    admin: AdminUser, session: SessionDep,
    entity: Annotated[str | None, Query(max_length=100)] = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Who changed what, when, with the previous and new values."""
    reject_control_characters(entity, param="entity")
    reject_control_characters(entity_id, param="entity_id")
    rows = session.connection().execute(text("""
        SELECT id, at, actor_user_id, action, entity, entity_id, before, after FROM audit_log
        WHERE (CAST(:entity AS text) IS NULL OR entity = :entity)
          AND (CAST(:entity_id AS text) IS NULL OR entity_id = :entity_id)
        ORDER BY id DESC LIMIT :limit
    """), {"entity": entity, "entity_id": entity_id, "limit": limit}).mappings().all()
    return [dict(r) for r in rows]
