"""``cloud-bridge user …``: staff accounts from the shell, so a fresh install can log in."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import make_engine
from cloud_bridge.web.auth import WebAuth
from cloud_bridge.web.auth_schema import users
from cloud_bridge.web.roles import Role
from cloud_bridge.web.web_app import ensure_web_schema

user_app = typer.Typer(help="staff users of the web modules", no_args_is_help=True)

PASSWORD_ENV = "BRIDGE_USER_PASSWORD"
DbOpt = Annotated[str, typer.Option("--db", envvar="BRIDGE_DB",
                                    help="sqlite:///path or postgresql://user@host/db")]


@user_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="the tenant the user belongs to")],
    username: Annotated[str, typer.Option(help="login name (an e-mail address is usual)")],
    role: Annotated[Role, typer.Option(help="what the user may do (docs/web.md)")],
    db: DbOpt = "sqlite:///bridge.sqlite3",
) -> None:
    """Create a user. The password is read from $BRIDGE_USER_PASSWORD or prompted for."""
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "password (10+ characters)", hide_input=True, confirmation_prompt=True)
    engine = make_engine(db)
    ensure_web_schema(engine)
    try:
        WebAuth(engine).create_user(tenant, username, password, role.value)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except IntegrityError:
        typer.echo(f"the username {username.strip().lower()} is taken", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"user {username.strip().lower()} ({role.value}) created in tenant {tenant}")


@user_app.command("list")
def list_users(tenant: str, db: DbOpt = "sqlite:///bridge.sqlite3") -> None:
    """The tenant's users and roles."""
    engine = make_engine(db)
    ensure_web_schema(engine)
    with engine.connect() as conn:
        for row in conn.execute(select(users.c.username, users.c.role, users.c.active)
                                .where(users.c.tenant == tenant).order_by(users.c.username)):
            typer.echo(f"{row.username}\t{row.role}\t{'active' if row.active else 'disabled'}")
