"""Users and roles of one tenant (administrators only) and the tenant's audit log."""

import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.param_bounds import MAX_ROW_ID
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.auth_schema import sessions, users
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.rendering import render
from cloud_bridge.web.roles import Role

ROLE_PATTERN = "^(" + "|".join(r.value for r in Role) + ")$"


router = APIRouter(prefix="/t/{tenant}")
Admin = Annotated[Staff, Depends(need("users.manage"))]
Auditor = Annotated[Staff, Depends(need("audit.view"))]
UserId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]  # users.id is a 32-bit integer

def back(staff: Staff, **msg: str) -> RedirectResponse:
    query = "&".join(f"{k}={quote(v[:300])}" for k, v in msg.items())
    return RedirectResponse(f"/t/{staff.tenant}/users?{query}", 303)


@router.get("/users", **route_meta("users.manage"))
def list_users(request: Request, staff: Admin, ctx: Ctx, error: str = "", notice: str = ""
               ) -> Response:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(users.c.id, users.c.username, users.c.role,
                                   users.c.active, users.c.created_ms)
                            .where(users.c.tenant == staff.tenant)
                            .order_by(users.c.username)).mappings().all()
    return render(request, "users.html", staff, users=rows, roles=[r.value for r in Role],
                  error=error[:300], notice=notice[:200])


@router.post("/users", **route_meta("users.manage"))
def create_user(staff: Admin, ctx: Ctx,
                username: Annotated[str, Form(min_length=3, max_length=120)],
                password: Annotated[str, Form(max_length=200)],
                role: Annotated[str, Form(pattern=ROLE_PATTERN)]) -> Response:
    if len(password) < 10:
        return back(staff, error="A password needs at least 10 characters.")
    name = username.strip().lower()
    try:
        with write_tx(ctx.engine) as conn:
            conn.execute(insert(users).values(
                tenant=staff.tenant, username=name,
                password_hash=ctx.auth.hasher.hash(password), role=role, active=True,
                created_ms=int(time.time() * 1000)))
            audit.record(conn, staff, "user.create", name, {"role": role})
    except IntegrityError:
        # usernames are global (the login form has no tenant field)
        return back(staff, error=f"The username {name} is taken; choose another.")
    return back(staff, notice=f"User {name} created")


def change_user(ctx: WebContext, staff: Staff, user_id: int, action: str,
                **values: object) -> Response:
    if user_id == staff.user_id:
        return back(staff, error="You cannot change your own role or access.")
    with write_tx(ctx.engine) as conn:
        name = conn.execute(select(users.c.username).where(
            users.c.id == user_id, users.c.tenant == staff.tenant)).scalar()
        if name is None:
            raise HTTPException(404, "no such user")
        conn.execute(update(users).where(users.c.id == user_id,
                                         users.c.tenant == staff.tenant).values(**values))
        if values.get("active") is False or "role" in values:
            # a changed role or a disabled account takes effect at once
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        audit.record(conn, staff, action, name, dict(values))
    return back(staff, notice=f"User {name} updated")


@router.post("/users/{user_id}/role", **route_meta("users.manage"))
def set_role(staff: Admin, ctx: Ctx, user_id: UserId,
             role: Annotated[str, Form(pattern=ROLE_PATTERN)]) -> Response:
    return change_user(ctx, staff, user_id, "user.role", role=role)


@router.post("/users/{user_id}/active", **route_meta("users.manage"))
def set_active(staff: Admin, ctx: Ctx, user_id: UserId,
               active: Annotated[str, Form(pattern="^(yes|no)$")]) -> Response:
    return change_user(ctx, staff, user_id, "user.active", active=active == "yes")


@router.get("/audit", **route_meta("audit.view"))
def audit_page(request: Request, staff: Auditor, ctx: Ctx
               ) -> Response:
    with read_tx(ctx.engine) as conn:
        rows = audit.recent(conn, staff.tenant, 300)
    return render(request, "audit.html", staff, rows=rows)
