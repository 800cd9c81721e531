"""The alerts dashboard for staff (``/t/{tenant}/alerts?month=``): the legal alerts of
every employee's month (alert_notices.py), and a button that e-mails the new ones to
the managers through the bridge's notification outbox."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge.attendance.alert_notices import alert_text, notify_managers, tenant_alerts
from cloud_bridge.attendance.staff_pages import (
    Editor,
    MonthText,
    Viewer,
    month_choices,
    parse_month_text,
    render,
)
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import form_dict
from contracts.i18n import gettext as _

router = APIRouter()


@router.get("/alerts", **route_meta("attendance.view"))
def alerts_page(request: Request, staff: Viewer, ctx: Ctx, month: MonthText = None,
                sent: int | None = None) -> Response:
    try:
        chosen = parse_month_text(month)
    except ValueError:
        chosen = parse_month_text(None)
    with read_tx(ctx.engine) as conn:
        found = tenant_alerts(conn, staff.tenant, chosen.year, chosen.month)
    rows = [(name, a.employee, alert_text(a)) for name, a in found]
    notice = (_("%(n)s new alert e-mails were queued for the managers.") % {"n": sent}
              if sent is not None else "")
    return render(request, "alerts.html", staff, rows=rows, month=chosen,
                  choices=month_choices(chosen), notice=notice,
                  can_mail=ctx.notifier is not None)


@router.post("/alerts/notify", **route_meta("attendance.edit"))
async def notify(request: Request, staff: Editor, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    chosen = parse_month_text(typed.get("month") or None)
    sent = 0
    if ctx.notifier is not None:
        with write_tx(ctx.engine) as conn:
            found = tenant_alerts(conn, staff.tenant, chosen.year, chosen.month)
            sent = notify_managers(conn, ctx.notifier, staff.tenant, found)
    return RedirectResponse(f"/t/{staff.tenant}/alerts?month={chosen.iso}&sent={sent}", 303)
