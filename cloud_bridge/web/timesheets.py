"""E-EDC timesheets for staff: the month report of cloud_bridge/attendance/ as the
printable page and as CSV, for administrators and accountants of the tenant."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from cloud_bridge.attendance.reports import (
    MonthReport,
    company_csv,
    month_report,
    parse_month,
    report_html,
)
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import need, route_meta

Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]


router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("attendance.view"))]


def report_for(ctx: WebContext, staff: Staff, month: str | None) -> MonthReport:
    try:
        year, mon = parse_month(month or datetime.now(UTC).strftime("%Y-%m"))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    with read_tx(ctx.engine) as conn:
        return month_report(conn, staff.tenant, year, mon)


@router.get("/timesheets", **route_meta("attendance.view"))
def timesheets(staff: Viewer, ctx: Ctx, month: Month | None = None,
               detail: bool = True) -> Response:
    return HTMLResponse(report_html(report_for(ctx, staff, month), detail=detail))


@router.get("/timesheets.csv", **route_meta("attendance.view"))
def timesheets_csv(staff: Viewer, ctx: Ctx, month: Month | None = None) -> Response:
    report = report_for(ctx, staff, month)
    return Response(company_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": "attachment; filename="
                             f"timesheets-{staff.tenant}-{report.label}.csv"})
