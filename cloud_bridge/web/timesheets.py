"""E-EDC timesheets for staff: a month of the report of cloud_bridge/attendance/ as a page
(previous/next month, a month picker, who is at work now, corrections and absences
marked with their reasons, a print stylesheet) and as a CSV file for a spreadsheet, for
administrators and accountants of the tenant."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cloud_bridge.attendance import absences_page, corrections_page, employees_page
from cloud_bridge.attendance.presence import present_now
from cloud_bridge.attendance.reports import month_report
from cloud_bridge.attendance.staff_csv import staff_csv
from cloud_bridge.attendance.staff_pages import (
    MonthText,
    Viewer,
    month_choices,
    parse_month_text,
    render,
    this_month,
)
from cloud_bridge.attendance.timesheet_marks import month_marks
from cloud_bridge.db_schema import read_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import route_meta

router = APIRouter(prefix="/t/{tenant}")


def _bad_month(request: Request, staff: Staff, typed: str | None, exc: ValueError
               ) -> Response:
    """The page of this month with the message beside the month that was typed."""
    current = this_month()
    return render(request, "timesheet_page.html", staff, 422, error=str(exc),
                  month=current, choices=month_choices(current), r=None, typed=typed)


@router.get("/timesheets", **route_meta("attendance.view"))
def timesheets(request: Request, staff: Viewer, ctx: Ctx, month: MonthText = None,
               detail: bool = True) -> Response:
    try:
        chosen = parse_month_text(month)
    except ValueError as exc:
        return _bad_month(request, staff, month, exc)
    with read_tx(ctx.engine) as conn:
        report = month_report(conn, staff.tenant, chosen.year, chosen.month)
        marks = month_marks(conn, report)
        present = present_now(conn, staff.tenant)
    return render(request, "timesheet_page.html", staff, month=chosen,
                  choices=month_choices(chosen), r=report, rules=report.rules,
                  marks=marks, detail=detail, present=present, month_label=chosen.label(),
                  now=datetime.now(UTC))


@router.get("/timesheets.csv", **route_meta("attendance.view"))
def timesheets_csv(request: Request, staff: Viewer, ctx: Ctx, month: MonthText = None
                   ) -> Response:
    try:
        chosen = parse_month_text(month)
    except ValueError as exc:
        return _bad_month(request, staff, month, exc)
    with read_tx(ctx.engine) as conn:
        report = month_report(conn, staff.tenant, chosen.year, chosen.month)
    return Response(staff_csv(report, chosen.label()).encode("utf-8"),
                    media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": "attachment; filename="
                             f"timesheets-{staff.tenant}-{chosen.iso}.csv"})


# the other attendance staff pages (employees, corrections, absences) are served with
# this router, so mount_web needs no line per page
for _page_module in (employees_page, corrections_page, absences_page):
    router.include_router(_page_module.router)
