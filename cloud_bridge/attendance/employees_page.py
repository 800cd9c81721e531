"""Employees of the time clock for staff: the list (who has a PIN, who is at work now),
a new employee with their number and PIN, and the edit form (name, PIN set, reset or
removed). An employee is a member of the tenant (their number is the member id the
kiosk asks for); every change goes through membership_ops and the change log, so the
PIN reaches the time clocks as the existing scrypt hash and is never shown."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, insert

from cloud_bridge import membership_ops
from cloud_bridge.api_models import ID_PATTERN, MemberIn, MemberPatch
from cloud_bridge.attendance import (
    absence_requests_page,
    alerts_page,
    phone_admin_page,
    timeline,
)
from cloud_bridge.attendance import staff_forms as forms
from cloud_bridge.attendance.presence import present_now
from cloud_bridge.attendance.schema import employees
from cloud_bridge.attendance.staff_pages import Editor, Viewer, render, tenant_employees
from cloud_bridge.db_schema import read_tx
from cloud_bridge.membership_ops import NotFound
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import validate_form
from cloud_bridge.web.guards import route_meta
from cloud_bridge.web.member_forms import form_dict
from cloud_bridge.web.membership_changes import FormError, apply_change
from cloud_bridge.web.nav import NAV, NavItem
from contracts.i18n import N_
from contracts.i18n import gettext as _

NAV.append(NavItem(N_("Employees"), "/employees", "attendance.view"))

router = APIRouter()
Number = Annotated[str, Path(pattern=ID_PATTERN)]
NOTICES = {"created": N_("The employee was added."), "saved": N_("The changes were saved.")}


@router.get("/employees", **route_meta("attendance.view"))
def employee_list(request: Request, staff: Viewer, ctx: Ctx, saved: str = "") -> Response:
    with read_tx(ctx.engine) as conn:
        rows = tenant_employees(conn, staff.tenant)
        present = {p.employee for p in present_now(conn, staff.tenant)}
    notice = _(NOTICES[saved]) if saved in NOTICES else ""
    return render(request, "employees.html", staff, employees=rows, present=present,
                  notice=notice)


def _form_page(request: Request, staff: Staff, status: int = 200, **context: Any) -> Response:
    return render(request, "employee_form.html", staff, status, forms=forms, **context)


@router.get("/employees/new", **route_meta("attendance.edit"))
def new_employee(request: Request, staff: Editor) -> Response:
    return _form_page(request, staff, values={}, errors={}, employee=None)


@router.post("/employees", **route_meta("attendance.edit"))
async def create_employee(request: Request, staff: Editor, ctx: Ctx) -> Response:
    typed = await form_dict(request)
    body, errors = validate_form(forms.EmployeeNew, forms.blanks_to_none(typed, "pin"))
    shown = {k: v for k, v in typed.items() if k != "pin"}  # a PIN is never sent back
    if body is None:
        return _form_page(request, staff, 422, values=shown, errors=errors, employee=None)
    with read_tx(ctx.engine) as conn:
        taken = False
        try:
            membership_ops.get_member(conn, staff.tenant, body.number)
            taken = True
        except NotFound:
            pass
    if taken:
        errors = {"number": _("Number %(number)s is already taken.") % {"number": body.number}}
        return _form_page(request, staff, 422, values=shown, errors=errors, employee=None)
    member = MemberIn(id=body.number, first_name=body.first_name, last_name=body.last_name,
                      pin=body.pin)
    try:
        apply_change(ctx, staff, "member.create", body.number, {"employee": True},
                     lambda c: _create(c, staff, member))
    except FormError:
        errors = {"number": _("Number %(number)s is already taken.") % {"number": body.number}}
        return _form_page(request, staff, 422, values=shown, errors=errors, employee=None)
    return RedirectResponse(f"/t/{staff.tenant}/employees?saved=created", 303)


def _create(conn: Connection, staff: Staff, member: MemberIn
            ) -> tuple[str, list[membership_ops.Record]]:
    """The member (to the devices, with the PIN's hash) and their employee row."""
    created = membership_ops.create_member(conn, staff.tenant, member)
    conn.execute(insert(employees).values(tenant=staff.tenant, employee=created[0],
                                          added_by=staff.username,
                                          added_at=int(time.time() * 1000)))
    return created


def _member(ctx: Ctx, tenant: str, number: str) -> dict[str, Any]:
    with read_tx(ctx.engine) as conn:
        try:
            return dict(membership_ops.get_member(conn, tenant, number))
        except NotFound:
            raise HTTPException(404, "no such employee") from None


@router.get("/employees/{member_id}", **route_meta("attendance.edit"))
def edit_employee(request: Request, staff: Editor, ctx: Ctx, member_id: Number) -> Response:
    member = _member(ctx, staff.tenant, member_id)
    values = {"first_name": member["first_name"], "last_name": member["last_name"]}
    return _form_page(request, staff, values=values, errors={}, employee=member)


@router.post("/employees/{member_id}", **route_meta("attendance.edit"))
async def update_employee(request: Request, staff: Editor, ctx: Ctx, member_id: Number
                          ) -> Response:
    member = _member(ctx, staff.tenant, member_id)
    typed = await form_dict(request)
    body, errors = validate_form(forms.EmployeeEdit, {
        **forms.blanks_to_none(typed, "pin"), "remove_pin": typed.get("remove_pin") == "1"})
    shown = {k: v for k, v in typed.items() if k != "pin"}
    if body is not None and body.pin and body.remove_pin:
        errors = {"pin": _("Either give a new PIN or remove it, not both.")}
    if body is None or errors:
        return _form_page(request, staff, 422, values=shown, errors=errors, employee=member)
    fields: dict[str, Any] = {"first_name": body.first_name, "last_name": body.last_name}
    if body.pin:
        fields["pin"] = body.pin
    elif body.remove_pin:
        fields["pin"] = None
    patch = MemberPatch.model_validate(fields)
    apply_change(ctx, staff, "member.update", member_id,
                 {"fields": sorted(patch.model_fields_set)},
                 lambda c: (None, membership_ops.update_member(c, staff.tenant, member_id,
                                                               patch)))
    return RedirectResponse(f"/t/{staff.tenant}/employees?saved=saved", 303)


# the phone page sits beside the employees, served with the attendance pages' router
router.include_router(phone_admin_page.router)
router.include_router(absence_requests_page.router)
router.include_router(alerts_page.router)
router.include_router(timeline.router)
