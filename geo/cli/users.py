"""``dolbom users``: accounts (staff, officers, admins) and their API tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geo.cli.common import console, fail, migrated_engine
from geo.errors import DolbomError
from geo.settings import get_settings

app = typer.Typer(help="Accounts: create staff, officers and admins; list accounts.", no_args_is_help=True)


@app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Login e-mail")],
    role: Annotated[str, typer.Option(help="parent | centre_staff | district_officer | city_admin")],
    centre: Annotated[list[str] | None, typer.Option(help="어린이집코드 (staff; repeatable)")] = None,
    district: Annotated[str | None, typer.Option(help="구 code or name (district officers)")] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password: Annotated[str | None, typer.Option(help="Default: DOLBOM_NEW_PASSWORD or a prompt",
                                                 envvar="DOLBOM_NEW_PASSWORD")] = None,
) -> None:
    """Create an account (the city admin's tool for staff, officers and further admins)."""
    from geo.auth.accounts import create_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = migrated_engine()
    try:
        with engine.begin() as conn:
            user_id = create_user(conn, email=email, password=password, role=role, display_name=name,
                                  district_code=district, facility_codes=centre or [])
    except (DolbomError, ValueError) as exc:
        fail(exc if isinstance(exc, DolbomError) else DolbomError(str(exc)))
    console.print(f"[green]created[/green] user {user_id} {email} ({role})")


@app.command("list")
def users_list() -> None:
    """List accounts with role and bindings."""
    from sqlalchemy import text

    engine = migrated_engine()
    table = Table(title="users")
    for col in ("id", "email", "role", "구", "centres", "verified"):
        table.add_column(col)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT u.id, u.email, u.role, u.district_code, count(uc.facility_id) AS centres, u.verified_at
            FROM users u LEFT JOIN user_centres uc ON uc.user_id = u.id GROUP BY u.id ORDER BY u.id
        """)).all()
    for r in rows:
        table.add_row(str(r.id), r.email, r.role, r.district_code or "", str(r.centres),
                      "yes" if r.verified_at else "")
    Console().print(table)


@app.command("token")
def users_token(email: Annotated[str, typer.Option(help="Account e-mail")],
                label: Annotated[str | None, typer.Option()] = None) -> None:
    """Issue an API bearer token for an account (printed once on stdout; only its hash is stored)."""
    from sqlalchemy import text

    from geo.auth.accounts import issue_token

    engine = migrated_engine()
    with engine.begin() as conn:
        user_id = conn.execute(text("SELECT id FROM users WHERE email = :e"),
                               {"e": email.strip().lower()}).scalar_one_or_none()
        if user_id is None:
            fail(DolbomError(f"no account {email}"))
        issued = issue_token(conn, get_settings(), user_id=user_id, kind="bearer", label=label or "cli")
    print(issued.secret)
