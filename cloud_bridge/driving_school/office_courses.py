"""The office's courses (a candidate's training for one category): the list, a new
course, a course's page and its edit form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import CATEGORIES, CourseForm
from cloud_bridge.driving_school.office_pages import form_of, page
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import candidates, courses
from cloud_bridge.param_bounds import RowIdPath

router = APIRouter(prefix=BASE, include_in_schema=False)


def course_values(engine: Engine, form: dict[str, Any], tenant: str) -> dict[str, Any]:
    values = CourseForm.model_validate(form).model_dump()
    one(engine, candidates, tenant, values["candidate_id"])
    return values


COURSE = OfficeForm(courses, course_values)


@router.get("/courses")
async def course_list(request: Request, school: School, error: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    people = {c["id"]: c for c in listing(school.engine, candidates, staff.tenant,
                                          candidates.c.last_name)}
    return page(request, "courses.html", staff, error=error, categories=CATEGORIES,
                rows=listing(school.engine, courses, staff.tenant,
                             courses.c.started_on.desc()),
                people=people)


@router.post("/courses")
async def course_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    return save_row(school.engine, COURSE, staff.tenant, await form_of(request),
                    error_path="/courses", done="/courses")


@router.get("/courses/{course_id}")
async def course_page(request: Request, school: School, course_id: RowIdPath,
                      error: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    course = one(school.engine, courses, staff.tenant, course_id)
    person = one(school.engine, candidates, staff.tenant, course["candidate_id"])
    return page(request, "course.html", staff, course=course, person=person,
                error=error, categories=CATEGORIES)


@router.post("/courses/{course_id}")
async def course_update(request: Request, school: School, course_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    course = one(school.engine, courses, staff.tenant, course_id)
    form = {**await form_of(request), "candidate_id": course["candidate_id"]}
    return save_row(school.engine, COURSE, staff.tenant, form, row_id=course_id,
                    error_path=f"/courses/{course_id}",
                    done=f"/candidates/{course['candidate_id']}")
