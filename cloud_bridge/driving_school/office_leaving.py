"""A candidate moving to another school: the form on the candidate's page ("issue the
izpisni list") and the printable izpisni list."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import LeavingForm
from cloud_bridge.driving_school.leaving_sheet import leaving_sheet, record_leaving
from cloud_bridge.driving_school.lesson_log import log_rows
from cloud_bridge.driving_school.office_candidates import candidate_view
from cloud_bridge.driving_school.office_pages import back, form_of, page
from cloud_bridge.driving_school.office_rows import one
from cloud_bridge.driving_school.schema import candidates
from cloud_bridge.driving_school.school_profile import load_profile
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.form_errors import validate_form

router = APIRouter(prefix=BASE, include_in_schema=False)


@router.post("/candidates/{candidate_id}/leave")
async def candidate_leave(request: Request, school: School, candidate_id: RowIdPath
                          ) -> Response:
    staff = await school.access.staff(request, "members.edit")
    person = one(school.engine, candidates, staff.tenant, candidate_id)
    form = await form_of(request)
    model, errors = validate_form(LeavingForm, form)
    if model is None:
        return candidate_view(request, school, staff, person, 422, leave_values=form,
                              leave_errors=errors)
    with write_tx(school.engine) as conn:
        record_leaving(conn, staff.tenant, candidate_id, model.left_on, model.to_school,
                       staff.username)
    return back(f"/candidates/{candidate_id}/leaving-sheet")


@router.get("/candidates/{candidate_id}/leaving-sheet")
async def candidate_leaving_sheet(request: Request, school: School,
                                  candidate_id: RowIdPath) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    name = load_profile(school.engine, staff.tenant, school.school_name)["name"]
    with read_tx(school.engine) as conn:
        sheet = leaving_sheet(conn, staff.tenant, candidate_id, name)
        rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
    if sheet is None:
        raise HTTPException(404, "not found")
    return page(request, "leaving_sheet.html", staff, sheet=sheet, rows=rows,
                printed=int(time.time() * 1000))
