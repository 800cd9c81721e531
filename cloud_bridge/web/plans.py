"""Plans: the tenant's products (a monthly pass, a 10-entry card, an off-peak pass…) as
templates for entitlements. Applying a plan to a member creates an ordinary entitlement
through membership_ops; devices never see plans."""

import time
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, String, Table, insert, select
from sqlalchemy import update as sql_update

from cloud_bridge.api_models import EntitlementFields
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entitlement_forms import (
    FieldError,
    format_windows,
    parse_windows,
    parse_zones,
)
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.membership_changes import first_error
from cloud_bridge.web.rendering import render

plans = Table(
    "web_plans", web_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("duration_days", Integer, nullable=True),  # memberships: from the start day
    Column("entries_total", Integer, nullable=True),
    Column("zones", JSON, nullable=True),
    Column("windows", JSON, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
)


def tenant_plans(conn: Any, tenant: str, active_only: bool = False) -> list[dict[str, Any]]:
    stmt = select(plans).where(plans.c.tenant == tenant)
    if active_only:
        stmt = stmt.where(plans.c.active.is_(True))
    return [dict(r) for r in conn.execute(stmt.order_by(plans.c.name)).mappings()]


def get_plan(conn: Any, tenant: str, plan_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(plans).where(plans.c.tenant == tenant, plans.c.id == plan_id)
                       ).mappings().first()
    return dict(row) if row else None


router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("members.view"))]
Editor = Annotated[Staff, Depends(need("plans.edit"))]


@router.get("/plans", **route_meta("members.view"))
def list_plans(request: Request, staff: Viewer, ctx: Ctx,
               error: str = "", notice: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        rows = tenant_plans(conn, staff.tenant)
    for r in rows:
        r["windows_text"] = format_windows(r["windows"])
    return render(request, "plans.html", staff, plans=rows, error=error[:300],
                  notice=notice[:200])


@router.post("/plans", **route_meta("plans.edit"))
async def create_plan(request: Request, staff: Editor, ctx: Ctx
                      ) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    back = f"/t/{staff.tenant}/plans"
    try:
        name = form.get("name", "").strip()[:80]
        if not name:
            raise FieldError("a plan needs a name")
        duration = form.get("duration_days", "").strip()
        entries = form.get("entries_total", "").strip()
        values = {
            "kind": form.get("kind", ""),
            "duration_days": int(duration) if duration.isdigit() else None,
            "entries_total": int(entries) if entries.isdigit() else None,
            "zones": parse_zones(form.get("zones", "")),
            "windows": parse_windows(form.get("windows", "")) or None,
        }
        # validated as an entitlement would be, so applying the plan cannot fail
        EntitlementFields.model_validate({
            "member_id": "x", "kind": values["kind"], "valid_on": "2000-01-01",
            "entries_total": values["entries_total"], "zones": values["zones"],
            "windows": values["windows"] or []})
        if values["kind"] in ("punch_card", "gift_voucher") and not values["entries_total"]:
            raise FieldError("this kind needs a number of entries")
    except ValidationError as exc:
        return RedirectResponse(f"{back}?error={quote(first_error(exc))}", 303)
    except FieldError as exc:
        return RedirectResponse(f"{back}?error={quote(str(exc))}", 303)
    plan_id = f"p-{uuid.uuid4().hex[:12]}"
    with write_tx(ctx.engine) as conn:
        conn.execute(insert(plans).values(tenant=staff.tenant, id=plan_id, name=name,
                                          active=True, created_ms=int(time.time() * 1000),
                                          **values))
        audit.record(conn, staff, "plan.create", plan_id, {"name": name, **values})
    return RedirectResponse(f"{back}?notice={quote(f'Plan {name} created')}", 303)


@router.post("/plans/{plan_id}/active", **route_meta("plans.edit"))
async def toggle_plan(plan_id: str, staff: Editor, ctx: Ctx) -> Response:
    with write_tx(ctx.engine) as conn:
        plan = get_plan(conn, staff.tenant, plan_id[:64])
        if plan is None:
            raise HTTPException(404, "no such plan")
        if plan is not None:
            conn.execute(sql_update(plans).where(
                plans.c.tenant == staff.tenant, plans.c.id == plan["id"]).values(
                active=not plan["active"]))
            audit.record(conn, staff, "plan.active", plan["id"],
                         {"active": not plan["active"]})
    return RedirectResponse(f"/t/{staff.tenant}/plans", 303)

