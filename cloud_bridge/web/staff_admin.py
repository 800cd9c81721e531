"""Users and roles of one tenant (administrators only) and the tenant's audit log."""

import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.param_bounds import MAX_ROW_ID
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.auth_schema import sessions, users
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.rendering import render
from cloud_bridge.web.roles import Role, role_name
from contracts.i18n import N_
from contracts.i18n import gettext as _

ROLE_PATTERN = "^(" + "|".join(r.value for r in Role) + ")$"


router = APIRouter(prefix="/t/{tenant}")
Admin = Annotated[Staff, Depends(need("users.manage"))]
Auditor = Annotated[Staff, Depends(need("audit.view"))]
UserId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]  # users.id is a 32-bit integer

USERNAME_MIN, USERNAME_MAX = 3, 120
PASSWORD_MIN, PASSWORD_MAX = 10, 200
NOTICES = {"created": N_("User created."), "updated": N_("User updated.")}
ERRORS = {"self": N_("You cannot change your own role or access.")}


class UserForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    username: Annotated[str, Field(min_length=USERNAME_MIN, max_length=USERNAME_MAX)]
    password: Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
    role: Role


def back(staff: Staff, **msg: str) -> RedirectResponse:
    query = "&".join(f"{k}={quote(v[:40])}" for k, v in msg.items())
    return RedirectResponse(f"/t/{staff.tenant}/users?{query}", 303)


def users_page(request: Request, staff: Staff, ctx: WebContext, values: dict[str, str],
               errors: FieldErrors, status: int = 200, **msg: str) -> Response:
    with read_tx(ctx.engine) as conn:
        rows = conn.execute(select(users.c.id, users.c.username, users.c.role,
                                   users.c.active, users.c.created_ms)
                            .where(users.c.tenant == staff.tenant)
                            .order_by(users.c.username)).mappings().all()
    roles = [(r.value, role_name(r.value)) for r in Role]
    limits = {"username_min": USERNAME_MIN, "username_max": USERNAME_MAX,
              "password_min": PASSWORD_MIN, "password_max": PASSWORD_MAX}
    return render(request, "users.html", staff, status_code=status, users=rows, roles=roles,
                  values=values, errors=errors, limits=limits, **msg)


@router.get("/users", **route_meta("users.manage"))
def list_users(request: Request, staff: Admin, ctx: Ctx,
               error: Annotated[str, Query(max_length=40)] = "",
               notice: Annotated[str, Query(max_length=40)] = "") -> Response:
    return users_page(request, staff, ctx, {"role": Role.RECEPTION.value}, {},
                      error=_(ERRORS[error]) if error in ERRORS else "",
                      notice=_(NOTICES[notice]) if notice in NOTICES else "")


@router.post("/users", **route_meta("users.manage"))
async def create_user(request: Request, staff: Admin, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    checked, errors = validate_form(UserForm, form)
    kept = {k: v for k, v in form.items() if k != "password"}
    if checked is None:
        return users_page(request, staff, ctx, kept, errors, 422)
    name = checked.username.lower()
    try:
        with write_tx(ctx.engine) as conn:
            conn.execute(insert(users).values(
                tenant=staff.tenant, username=name,
                password_hash=ctx.auth.hasher.hash(checked.password), role=checked.role.value,
                active=True, created_ms=int(time.time() * 1000)))
            audit.record(conn, staff, "user.create", name, {"role": checked.role.value})
    except IntegrityError:
        # usernames are global (the login form has no tenant field); the message is the
        # same whichever tenant holds the name, so it reveals no other tenant's users
        return users_page(request, staff, ctx, kept, {"username": _(
            "This username cannot be used. Choose another one.")}, 422)
    return back(staff, notice="created")


def change_user(ctx: WebContext, staff: Staff, user_id: int, action: str,
                **values: object) -> Response:
    if user_id == staff.user_id:
        return back(staff, error="self")
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
    return back(staff, notice="updated")


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
