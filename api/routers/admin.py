"""City admin: create staff, officers and admins; read accounts and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import text

from api.deps import AdminUser, CurrentUser, SessionDep, WriteRoute, WriteTx
from api.schemas.accounts import AuditOut, IdentityResetIn, UserCreateIn, UserOut
from api.security import authorize
from geo.auth import identity
from geo.auth.accounts import create_user, get_user, set_disabled
from geo.auth.policy import Action
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


@router.post("/users/{user_id}/identity/reset", response_model=UserOut,
             summary="Reset an account's 본인인증 (city admin), audited with the reason",
             responses={404: {"description": "No such account"},
                        409: {"description": "The account is not verified (`reason=not_verified`)"}})
def reset_identity(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: IdentityResetIn, user: CurrentUser,
                   tx: WriteTx) -> dict[str, Any]:
    """Clears the verified name, birth date, phone and CI so that the account's holder verifies anew; the only
    way an account can be verified as another person (verifying it as someone else is otherwise 409)."""
    authorize(user, Action.reset_identity)
    conn = tx.connection()
    identity.reset_identity(conn, user_id=user_id, actor_user_id=user.user_id, reason=body.reason)
    out = get_user(conn, user_id)
    return out


@router.post("/users/{user_id}/disable", response_model=UserOut, summary="Disable an account (city admin)",
             responses={409: {"description": "Your own account"}})
def disable(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], admin: AdminUser, tx: WriteTx) -> dict[str, Any]:
    """Its sessions and tokens stop working at once (revoked; a disabled account's tokens are refused anyway)."""
    return set_disabled(tx.connection(), user_id=user_id, disabled=True, actor_user_id=admin.user_id)


@router.post("/users/{user_id}/enable", response_model=UserOut, summary="Enable an account again (city admin)")
def enable(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], admin: AdminUser, tx: WriteTx) -> dict[str, Any]:
    """The user logs in again (the revoked sessions and tokens stay revoked)."""
    return set_disabled(tx.connection(), user_id=user_id, disabled=False, actor_user_id=admin.user_id)


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
