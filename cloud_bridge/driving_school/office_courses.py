"""The office's courses (a candidate's training for one category): the list, a new
course, a course's page and its edit form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import CATEGORIES, CourseForm
from cloud_bridge.driving_school.office_pages import back, form_of, page, shown
from cloud_bridge.driving_school.office_rows import OfficeForm, exists, listing, one, save_row
from cloud_bridge.driving_school.schema import candidates, courses
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import gettext as _

router = APIRouter(prefix=BASE, include_in_schema=False)


def course_values(engine: Engine, form: Mapping[str, Any], tenant: str
                  ) -> tuple[dict[str, Any] | None, FieldErrors]:
    model, errors = validate_form(CourseForm, form)
    if model is None:
        return None, errors
    if not exists(engine, candidates, tenant, model.candidate_id):
        return None, {"candidate_id": _("Choose one of the offered options.")}
    return model.model_dump(), {}


COURSE = OfficeForm(courses, course_values)


def list_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
              **ctx: Any) -> HTMLResponse:
    people = {c["id"]: c for c in listing(school.engine, candidates, staff.tenant,
                                          candidates.c.last_name)}
    ctx.setdefault("values", {"category": "B", "required_lessons": 20})
    return page(request, "courses.html", staff, status, categories=CATEGORIES,
                rows=listing(school.engine, courses, staff.tenant,
                             courses.c.started_on.desc()),
                people=people, **ctx)


@router.get("/courses")
async def course_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return list_page(request, school, staff)


@router.post("/courses")
async def course_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    form = await form_of(request)
    new_id, errors = save_row(school.engine, COURSE, staff.tenant, form)
    if new_id is None:
        return list_page(request, school, staff, 422, values=form, errors=errors)
    return back("/courses")


def course_view(request: Request, school: SchoolSettings, staff: Staff,
                course: dict[str, Any], status: int = 200, **ctx: Any) -> HTMLResponse:
    person = one(school.engine, candidates, staff.tenant, course["candidate_id"])
    ctx.setdefault("values", shown(course))
    return page(request, "course.html", staff, status, course=course, person=person,
                categories=CATEGORIES, **ctx)


@router.get("/courses/{course_id}")
async def course_page(request: Request, school: School, course_id: RowIdPath
                      ) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return course_view(request, school, staff,
                       one(school.engine, courses, staff.tenant, course_id))


@router.post("/courses/{course_id}")
async def course_update(request: Request, school: School, course_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    course = one(school.engine, courses, staff.tenant, course_id)
    form = {**await form_of(request), "candidate_id": course["candidate_id"]}
    saved, errors = save_row(school.engine, COURSE, staff.tenant, form, row_id=course_id)
    if saved is None:
        return course_view(request, school, staff, course, 422, values=form, errors=errors)
    return back(f"/candidates/{course['candidate_id']}")
