"""Staff side of the member notices (docs/notifications.md): the toggle on a member's
page that stops or restores every notice to that member (the same opt-out the member
sets on their own page), and the tenant's settings: how many days before a membership
ends its member is told, and at how many entries left a punch card's holder is told."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from cloud_bridge.db_schema import members, read_tx, write_tx
from cloud_bridge.member_notice_sweep import (
    MAX_EXPIRING_DAYS,
    MAX_PUNCH_LOW,
    NoticeSettings,
    set_tenant_settings,
    tenant_settings,
)
from cloud_bridge.notice_optouts import opt_in, opt_out
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.member_forms import MemberId, form_dict, member_url
from cloud_bridge.web.rendering import render
from contracts.i18n import gettext as _

router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("members.view"))]
Signer = Annotated[Staff, Depends(need("members.edit"))]
Admin = Annotated[Staff, Depends(need("plans.edit"))]


@router.post("/members/{member_id}/notices", **route_meta("members.edit"))
async def toggle(request: Request, staff: Signer, ctx: Ctx, member_id: MemberId) -> Response:
    form = await form_dict(request)
    stop = form.get("opted_out") == "1"
    with write_tx(ctx.engine) as conn:
        if conn.execute(select(members.c.id).where(
                members.c.tenant == staff.tenant, members.c.id == member_id)).first() is None:
            raise HTTPException(404, "no such member")
        (opt_out if stop else opt_in)(conn, staff.tenant, member_id)
        audit.record(conn, staff, "member.notices", member_id, {"opted_out": stop})
    return RedirectResponse(member_url(staff, member_id, notice="saved"), 303)


def settings_page(request: Request, staff: Staff, values: dict[str, str],
                  errors: FieldErrors, status: int = 200, notice: str = "") -> Response:
    return render(request, "member_notice_settings.html", staff, status_code=status,
                  values=values, errors=errors, notice=notice,
                  limits={"expiring_days": MAX_EXPIRING_DAYS, "punch_low": MAX_PUNCH_LOW})


@router.get("/member-notices", **route_meta("members.view"))
def show_settings(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    with read_tx(ctx.engine) as conn:
        current = tenant_settings(conn, staff.tenant)
    return settings_page(request, staff, {"expiring_days": str(current.expiring_days),
                                          "punch_low": str(current.punch_low_threshold)}, {})


def _number(form: dict[str, str], name: str, top: int, errors: FieldErrors) -> int:
    text = form.get(name, "").strip()
    if text.isdigit() and int(text) <= top:
        return int(text)
    errors[name] = _("Give a whole number from 0 to %(n)s (0: no such message).") % {
        "n": top}
    return 0


@router.post("/member-notices", **route_meta("plans.edit"))
async def save_settings(request: Request, staff: Admin, ctx: Ctx) -> Response:
    form = await form_dict(request)
    errors: FieldErrors = {}
    days = _number(form, "expiring_days", MAX_EXPIRING_DAYS, errors)
    low = _number(form, "punch_low", MAX_PUNCH_LOW, errors)
    if errors:
        return settings_page(request, staff, form, errors, status=422)
    with write_tx(ctx.engine) as conn:
        set_tenant_settings(conn, staff.tenant, NoticeSettings(days, low))
        audit.record(conn, staff, "member_notices.settings", staff.tenant,
                     {"expiring_days": days, "punch_low_threshold": low})
    return settings_page(request, staff, form, {}, notice=_("Saved."))
