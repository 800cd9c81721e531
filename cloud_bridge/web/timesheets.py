"""E-EDC timesheets for staff: the month report of cloud_bridge/attendance/ as the
printable page and as CSV, for administrators and accountants of the tenant."""

# no "from __future__ import annotations": FastAPI resolves the route signatures, whose
# dependencies are local to the router factory

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
from cloud_bridge.attendance.schema import create_attendance_schema
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.context import WebContext
from cloud_bridge.web.guards import need, route_meta

Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]


def timesheets_router(ctx: WebContext) -> APIRouter:
    create_attendance_schema(ctx.engine)
    router = APIRouter(prefix="/t/{tenant}")
    view = need(ctx.auth, "attendance.view")

    def report_for(staff: Staff, month: str | None) -> MonthReport:
        try:
            year, mon = parse_month(month or datetime.now(UTC).strftime("%Y-%m"))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        with read_tx(ctx.engine) as conn:
            return month_report(conn, staff.tenant, year, mon)

    @router.get("/timesheets", **route_meta("attendance.view"))
    def timesheets(staff: Annotated[Staff, Depends(view)], month: Month | None = None,
                   detail: bool = True) -> Response:
        return HTMLResponse(report_html(report_for(staff, month), detail=detail))

    @router.get("/timesheets.csv", **route_meta("attendance.view"))
    def timesheets_csv(staff: Annotated[Staff, Depends(view)],
                       month: Month | None = None) -> Response:
        report = report_for(staff, month)
        return Response(company_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": "attachment; filename="
                                 f"timesheets-{staff.tenant}-{report.label}.csv"})

    return router
