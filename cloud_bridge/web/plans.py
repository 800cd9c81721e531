"""Plans: the tenant's products (a monthly pass, a 10-entry card, an off-peak pass…) as
templates for entitlements. Applying a plan to a member creates an ordinary entitlement
through membership_ops; devices never see plans."""

import time
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, String, Table, insert, select
from sqlalchemy import update as sql_update

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.auth_schema import web_metadata
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.entitlement_forms import ENTRIES_MAX, format_windows
from cloud_bridge.web.form_errors import FieldErrors
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.plan_form import (
    DURATION_MAX_DAYS,
    KIND_LABELS,
    NAME_MAX,
    VAT_RATES_BP,
    WINDOWS_MAX,
    ZONES_MAX,
    check_plan,
    vat_label,
)
from cloud_bridge.web.rendering import render
from contracts.i18n import gettext as _

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

# a plan's price and VAT rate: a table of its own, so databases made before prices
# keep their plans (create_all adds a new table, never a column); a plan without a row
# here has no price yet
plan_prices = Table(
    "web_plan_prices", web_metadata,
    Column("tenant", String(64), primary_key=True),
    Column("plan_id", String(64), primary_key=True),
    Column("price_cents", Integer, nullable=False),
    Column("vat_rate_bp", Integer, nullable=False),  # 2200 = 22 %
)


def tenant_plans(conn: Any, tenant: str, active_only: bool = False) -> list[dict[str, Any]]:
    stmt = select(plans, plan_prices.c.price_cents, plan_prices.c.vat_rate_bp
                  ).select_from(plans.outerjoin(plan_prices, (
                      plan_prices.c.tenant == plans.c.tenant)
                      & (plan_prices.c.plan_id == plans.c.id))
                  ).where(plans.c.tenant == tenant)
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
LIMITS = {"name": NAME_MAX, "duration": DURATION_MAX_DAYS, "entries": ENTRIES_MAX,
          "zones": ZONES_MAX, "windows": WINDOWS_MAX}


def plans_page(request: Request, staff: Staff, ctx: Ctx, values: dict[str, str],
               errors: FieldErrors, status: int = 200, notice: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        rows = tenant_plans(conn, staff.tenant)
    for r in rows:
        r["windows_text"] = format_windows(r["windows"])
    return render(request, "plans.html", staff, status_code=status, plans=rows,
                  values=values, errors=errors, notice=notice, limits=LIMITS,
                  kinds=[(k, _(v)) for k, v in KIND_LABELS.items()], kind_labels=KIND_LABELS,
                  vat_rates=[(str(bp), vat_label(bp)) for bp in VAT_RATES_BP],
                  vat_label=vat_label)


@router.get("/plans", **route_meta("members.view"))
def list_plans(request: Request, staff: Viewer, ctx: Ctx, created: str = "") -> Response:
    notice = _("Plan %(name)s created.") % {"name": created[:NAME_MAX]} if created else ""
    return plans_page(request, staff, ctx, {"vat_rate_bp": "2200"}, {}, notice=notice)


@router.post("/plans", **route_meta("plans.edit"))
async def create_plan(request: Request, staff: Editor, ctx: Ctx) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    values, errors = check_plan(form)
    if values is None:
        return plans_page(request, staff, ctx, form, errors, status=422)
    plan_id = f"p-{uuid.uuid4().hex[:12]}"
    price = {"price_cents": values.pop("price_cents"), "vat_rate_bp": values.pop("vat_rate_bp")}
    with write_tx(ctx.engine) as conn:
        conn.execute(insert(plans).values(tenant=staff.tenant, id=plan_id, active=True,
                                          created_ms=int(time.time() * 1000), **values))
        conn.execute(insert(plan_prices).values(tenant=staff.tenant, plan_id=plan_id,
                                                **price))
        audit.record(conn, staff, "plan.create", plan_id, {**values, **price})
    return RedirectResponse(f"/t/{staff.tenant}/plans?created={quote(values['name'])}", 303)


@router.post("/plans/{plan_id}/active", **route_meta("plans.edit"))
async def toggle_plan(plan_id: str, staff: Editor, ctx: Ctx) -> Response:
    with write_tx(ctx.engine) as conn:
        plan = get_plan(conn, staff.tenant, plan_id[:64])
        if plan is None:
            raise HTTPException(404, "no such plan")
        conn.execute(sql_update(plans).where(
            plans.c.tenant == staff.tenant, plans.c.id == plan["id"]).values(
            active=not plan["active"]))
        audit.record(conn, staff, "plan.active", plan["id"], {"active": not plan["active"]})
    return RedirectResponse(f"/t/{staff.tenant}/plans", 303)
