"""The office's instructors: the list, a new instructor with their own sign-in (the role
"instructor"), editing an instructor's data and taking them out of (or back into) the
school: an inactive instructor's tablet is refused. Their day's log is in
``office_lessons``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import InstructorEdit, InstructorForm
from cloud_bridge.driving_school.office_pages import back, form_of, page, shown, today
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import instructors
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import gettext as _

router = APIRouter(prefix=BASE, include_in_schema=False)


def instructor_values(_engine: Engine, form: Mapping[str, Any], _tenant: str
                      ) -> tuple[dict[str, Any] | None, FieldErrors]:
    model, errors = validate_form(InstructorEdit, form)
    return (model.model_dump() if model else None), errors


INSTRUCTOR = OfficeForm(instructors, instructor_values)


def list_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
              **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", {"categories": "B"})
    return page(request, "instructors.html", staff, status, today=today(),
                rows=listing(school.engine, instructors, staff.tenant,
                             instructors.c.active.desc(), instructors.c.name), **ctx)


@router.get("/instructors")
async def instructor_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return list_page(request, school, staff)


@router.post("/instructors")
async def instructor_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "users.manage")
    form = await form_of(request)
    f, errors = validate_form(InstructorForm, form)
    if f is None:
        return list_page(request, school, staff, 422, values=form, errors=errors)
    try:
        user_id = school.auth.create_user(staff.tenant, f.username, f.password, "instructor")
    except IntegrityError:
        return list_page(request, school, staff, 422, values=form, errors={
            "username": _("This username is already in use; choose another one.")})
    with write_tx(school.engine) as conn:
        conn.execute(insert(instructors).values(
            tenant=staff.tenant, user_id=user_id, name=f.name, licence_no=f.licence_no,
            categories=f.categories, active=True))
    return back("/instructors")


def edit_page(request: Request, staff: Staff, teacher: dict[str, Any], status: int = 200,
              **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", shown(teacher))
    return page(request, "instructor.html", staff, status, teacher=teacher, **ctx)


@router.get("/instructors/{instructor_id}")
async def instructor_page(request: Request, school: School, instructor_id: RowIdPath
                          ) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return edit_page(request, staff, one(school.engine, instructors, staff.tenant,
                                         instructor_id))


@router.post("/instructors/{instructor_id}")
async def instructor_update(request: Request, school: School, instructor_id: RowIdPath
                            ) -> Response:
    staff = await school.access.staff(request, "users.manage")
    teacher = one(school.engine, instructors, staff.tenant, instructor_id)
    form = await form_of(request)
    saved, errors = save_row(school.engine, INSTRUCTOR, staff.tenant, form,
                             row_id=instructor_id)
    if saved is None:
        return edit_page(request, staff, teacher, 422, values=form, errors=errors)
    return back("/instructors")


@router.post("/instructors/{instructor_id}/active")
async def instructor_toggle(request: Request, school: School, instructor_id: RowIdPath
                            ) -> Response:
    staff = await school.access.staff(request, "users.manage")
    teacher = one(school.engine, instructors, staff.tenant, instructor_id)
    with write_tx(school.engine) as conn:
        conn.execute(update(instructors).where(instructors.c.tenant == staff.tenant,
                                               instructors.c.id == instructor_id)
                     .values(active=not teacher["active"]))
    return back("/instructors")
