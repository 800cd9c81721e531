"""Corrections of punches for staff: an employee's punches of a month (after the
corrections so far) and their corrections with who and why, and the form that adds a
forgotten punch, changes one or removes one, always with a reason. The rules are the
service's (corrections.create_correction), as for the JSON API."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from cloud_bridge.attendance import staff_forms as forms
from cloud_bridge.attendance.corrections import (
    CorrectionError,
    CorrectionIn,
    NotFound,
    corrected_punches,
    create_correction,
    list_corrections,
)
from cloud_bridge.attendance.employer_rules import tenant_rules
from cloud_bridge.attendance.labels import CORRECTION_ACTIONS, PUNCH_NAMES
from cloud_bridge.attendance.staff_pages import (
    Editor,
    Month,
    MonthText,
    Viewer,
    employee_choices,
    parse_month_text,
    render,
    tenant_employees,
    this_month,
    unknown_employee,
)
from cloud_bridge.attendance.timesheet import LJUBLJANA, month_bounds
from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import form_dict
from contracts.i18n import format_day
from contracts.i18n import gettext as _

router = APIRouter()
EmployeeQuery = Annotated[str, Query(max_length=64)]


def _punch_rows(conn: Connection, tenant: str, employee: str, month: Month
                ) -> list[dict[str, Any]]:
    start, end = month_bounds(month.year, month.month, tenant_rules(conn, tenant))
    return [{"at": p.at.isoformat(), "kind": p.kind.value, "source": p.source,
             "ref": p.source.split("~")[0], "corrected": "correction#" in p.source,
             "label": f"{format_day(p.at.astimezone(LJUBLJANA).date())} "
                      f"{p.at.astimezone(LJUBLJANA):%H:%M} · {_(PUNCH_NAMES[p.kind])}"}
            for p in corrected_punches(conn, tenant, start, end, [employee])]


def _page(request: Request, staff: Staff, ctx: Ctx, employee: str, month: Month,
          values: dict[str, Any], errors: FieldErrors, status: int = 200,
          notice: str = "", error: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        people = tenant_employees(conn, staff.tenant)
        known = any(e.number == employee for e in people)
        punches = _punch_rows(conn, staff.tenant, employee, month) if known else []
        done = list_corrections(conn, staff.tenant, employee) if known else []
    return render(request, "corrections.html", staff, status, forms=forms,
                  employees=employee_choices(people), employee=employee if known else "",
                  month=month, punches=punches, corrections=done, values=values,
                  errors=errors, notice=notice, error=error, actions=CORRECTION_ACTIONS,
                  action_choices=[(k, _(v)) for k, v in CORRECTION_ACTIONS.items()],
                  punch_choices=[("", _("— none (a new punch) —"))]
                  + [(p["ref"], p["label"]) for p in punches],
                  type_choices=[("", "—")] + [(k, _(v)) for k, v in PUNCH_NAMES.items()])


@router.get("/corrections", **route_meta("attendance.view"))
def corrections_page(request: Request, staff: Viewer, ctx: Ctx, employee: EmployeeQuery = "",
                     month: MonthText = None, saved: bool = False) -> Response:
    try:
        chosen = parse_month_text(month)
    except ValueError as exc:
        return _page(request, staff, ctx, employee, this_month(), {"employee": employee},
                     {}, 422, error=str(exc))
    return _page(request, staff, ctx, employee, chosen, {"employee": employee, "action": "add"},
                 {}, notice=_("The correction was saved.") if saved else "")


def _correction_in(body: forms.CorrectionForm, author: str) -> CorrectionIn:
    at = None
    if body.day is not None and body.time is not None:
        hour, minute = (int(p) for p in body.time.replace(".", ":").split(":"))
        at = datetime.combine(body.day, time(hour, minute), LJUBLJANA)
    device = seq = ref_correction = None
    if body.action != "add" and body.punch:
        ref_name, _sep, number = body.punch.partition("#")
        if ref_name == "correction":
            ref_correction = int(number)
        else:
            device, seq = ref_name, int(number)
    return CorrectionIn(body.action, author, body.reason, body.employee, device, seq,
                        ref_correction, at, body.punch_type)


def _service_error(exc: Exception) -> FieldErrors:
    if "voided" in str(exc):
        return {"punch": _("That punch was removed by an earlier correction; add the punch "
                           "anew instead.")}
    if isinstance(exc, NotFound):
        return {"punch": _("That punch does not exist any more; reload the page.")}
    return {"__all__": _("The correction could not be saved: %(why)s") % {"why": str(exc)}}


@router.post("/corrections", **route_meta("attendance.edit"))
async def add_correction(request: Request, staff: Editor, ctx: Ctx,
                         month: MonthText = None) -> Response:
    typed = await form_dict(request)
    try:
        chosen = parse_month_text(month)
    except ValueError:
        chosen = this_month()
    data = forms.blanks_to_none(typed, "punch", "day", "time", "punch_type")
    body, errors = validate_form(forms.CorrectionForm, data)
    if body is not None:
        errors = body.missing() or unknown_employee(ctx.engine, staff.tenant, body.employee)
        if body.punch and body.action != "add" and not body.punch.split("#")[-1].isdigit():
            errors["punch"] = _("Choose the punch to correct.")
    employee = typed.get("employee", "")
    if body is None or errors:
        return _page(request, staff, ctx, employee, chosen, typed, errors, 422)
    try:
        with write_tx(ctx.engine) as conn:
            create_correction(conn, staff.tenant, _correction_in(body, staff.username))
    except (CorrectionError, NotFound) as exc:
        return _page(request, staff, ctx, employee, chosen, typed, _service_error(exc), 422)
    return RedirectResponse(f"/t/{staff.tenant}/corrections?employee={body.employee}"
                            f"&month={chosen.iso}&saved=1", 303)

