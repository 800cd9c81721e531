"""The office's candidates: the list, a new candidate, a candidate's page (details,
courses, lesson log) and its edit form."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, select

from cloud_bridge.db_schema import read_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import CandidateForm
from cloud_bridge.driving_school.lesson_log import log_rows
from cloud_bridge.driving_school.office_pages import form_of, page
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import candidates, courses, instructors
from cloud_bridge.param_bounds import RowIdPath

router = APIRouter(prefix=BASE, include_in_schema=False)


def candidate_values(engine: Engine, form: dict[str, Any], tenant: str) -> dict[str, Any]:
    values = CandidateForm.model_validate({**form, "active": "active" in form}).model_dump()
    if values["instructor_id"] is not None:
        one(engine, instructors, tenant, values["instructor_id"])
    return values


CANDIDATE = OfficeForm(candidates, candidate_values, in_use="register number in use")


@router.get("/candidates")
async def candidate_list(request: Request, school: School, error: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return page(request, "candidates.html", staff, error=error,
                rows=listing(school.engine, candidates, staff.tenant,
                             candidates.c.last_name, candidates.c.first_name),
                teachers=listing(school.engine, instructors, staff.tenant,
                                 instructors.c.name))


@router.post("/candidates")
async def candidate_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    form = await form_of(request)
    return save_row(school.engine, CANDIDATE, staff.tenant, {**form, "active": "on"},
                    error_path="/candidates", done="/candidates/{id}",
                    extra={"created_ms": int(time.time() * 1000)})


@router.get("/candidates/{candidate_id}")
async def candidate_page(request: Request, school: School, candidate_id: RowIdPath,
                         error: str = "", sent: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    person = one(school.engine, candidates, staff.tenant, candidate_id)
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
        their = [dict(r) for r in conn.execute(select(courses).where(
            courses.c.tenant == staff.tenant, courses.c.candidate_id == candidate_id)
            .order_by(courses.c.id)).mappings()]
    return page(request, "candidate.html", staff, person=person, rows=rows,
                courses=their, error=error, sent=sent,
                teachers=listing(school.engine, instructors, staff.tenant,
                                 instructors.c.name),
                total=sum(r["lesson_count"] for r in rows),
                can_print=school.publisher is not None)


@router.post("/candidates/{candidate_id}")
async def candidate_update(request: Request, school: School, candidate_id: RowIdPath
                           ) -> Response:
    staff = await school.access.staff(request, "members.edit")
    one(school.engine, candidates, staff.tenant, candidate_id)
    path = f"/candidates/{candidate_id}"
    return save_row(school.engine, CANDIDATE, staff.tenant, await form_of(request),
                    row_id=candidate_id, error_path=path, done=path)
