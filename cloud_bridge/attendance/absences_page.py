"""Absences for staff: an employee's current and withdrawn absences, the form that
enters annual leave, sick leave or another absence with its dates and reason, and the
withdrawal of one (with a reason). The rules are the service's (absences.py), as for
the JSON API: an overlapping absence is refused."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from cloud_bridge.attendance import absences as absence_ops
from cloud_bridge.attendance import staff_forms as forms
from cloud_bridge.attendance.labels import ABSENCE_NAMES
from cloud_bridge.attendance.staff_pages import (
    Editor,
    Viewer,
    employee_choices,
    render,
    tenant_employees,
    unknown_employee,
)
from cloud_bridge.attendance.timesheet import AbsenceKind
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import form_dict
from contracts.i18n import N_, format_number
from contracts.i18n import gettext as _

router = APIRouter()
EmployeeQuery = Annotated[str, Query(max_length=64)]
AbsenceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
NOTICES = {"saved": N_("The absence was saved."), "withdrawn": N_("The absence was withdrawn.")}


def _page(request: Request, staff: Staff, ctx: Ctx, employee: str, values: dict[str, Any],
          errors: FieldErrors, status: int = 200, notice: str = "",
          withdraw_errors: dict[int, FieldErrors] | None = None) -> Response:
    with read_tx(ctx.engine) as conn:
        people = tenant_employees(conn, staff.tenant)
        known = any(e.number == employee for e in people)
        rows = absence_ops.list_absences(conn, staff.tenant, employee,
                                         include_withdrawn=True) if known else []
    kinds = [(k.value, _(ABSENCE_NAMES[k])) for k in absence_ops.ENTERED_KINDS]
    return render(request, "absences.html", staff, status, forms=forms,
                  employees=employee_choices(people), employee=employee if known else "",
                  absences=rows, values=values, errors=errors, notice=notice,
                  kind_choices=kinds, withdraw_errors=withdraw_errors or {},
                  hours_text=lambda h: format_number(h) if h is not None else "")


@router.get("/absences", **route_meta("attendance.view"))
def absences_page(request: Request, staff: Viewer, ctx: Ctx, employee: EmployeeQuery = "",
                  saved: str = "") -> Response:
    notice = _(NOTICES[saved]) if saved in NOTICES else ""
    return _page(request, staff, ctx, employee, {"employee": employee}, {}, notice=notice)


def _overlap_message(exc: Exception) -> FieldErrors:
    if "already has absence" in str(exc):
        return {"first_day": _("There is already an absence on these days; withdraw it "
                               "first, or give both absences their hours per day.")}
    return {"__all__": _("The absence could not be saved: %(why)s") % {"why": str(exc)}}


@router.post("/absences", **route_meta("attendance.edit"))
async def add_absence(request: Request, staff: Editor, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(forms.AbsenceForm, forms.blanks_to_none(typed, "hours_per_day"))
    employee = typed.get("employee", "")
    if body is not None:
        errors = body.order_errors() or unknown_employee(ctx.engine, staff.tenant, employee)
    if body is None or errors:
        return _page(request, staff, ctx, employee, typed, errors, 422)
    entry = absence_ops.AbsenceIn(body.employee, AbsenceKind(body.kind), body.first_day,
                                  body.last_day, staff.username, body.hours_per_day,
                                  body.note)
    try:
        with write_tx(ctx.engine) as conn:
            absence_ops.create_absence(conn, staff.tenant, entry)
    except absence_ops.AbsenceError as exc:
        return _page(request, staff, ctx, employee, typed, _overlap_message(exc), 422)
    return RedirectResponse(f"/t/{staff.tenant}/absences?employee={body.employee}&saved=saved",
                            303)


@router.post("/absences/{absence_id}/withdraw", **route_meta("attendance.edit"))
async def withdraw(request: Request, staff: Editor, ctx: Ctx, absence_id: AbsenceId
                   ) -> Response:
    typed = await form_dict(request)
    employee = typed.get("employee", "")
    body, errors = validate_form(forms.WithdrawForm, typed)
    if body is None:
        return _page(request, staff, ctx, employee, {"employee": employee}, {}, 422,
                     withdraw_errors={absence_id: errors})
    try:
        with write_tx(ctx.engine) as conn:
            absence_ops.withdraw_absence(conn, staff.tenant, absence_id, staff.username,
                                         body.reason)
    except absence_ops.AbsenceNotFound:
        return _page(request, staff, ctx, employee, {"employee": employee},
                     {"__all__": _("That absence was already withdrawn.")}, 422)
    return RedirectResponse(f"/t/{staff.tenant}/absences?employee={employee}&saved=withdrawn",
                            303)
