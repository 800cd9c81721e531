"""The office's theory training log (dnevnik usposabljanja): the sessions, a new session,
a session's page with the attendance list (printable) and saving who attended."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school import theory_log
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import CATEGORIES, TheorySessionForm
from cloud_bridge.driving_school.office_pages import back, form_of, page, today
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import candidates, theory_sessions
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.form_errors import FieldErrors, validate_form

router = APIRouter(prefix=BASE, include_in_schema=False)


def session_values(engine: Engine, form: Mapping[str, Any], tenant: str
                   ) -> tuple[dict[str, Any] | None, FieldErrors]:
    model, errors = validate_form(TheorySessionForm, form)
    return (model.model_dump(), {}) if model is not None else (None, errors)


SESSION = OfficeForm(theory_sessions, session_values)


def list_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
              **ctx: Any) -> HTMLResponse:
    with read_tx(school.engine) as conn:
        rows = theory_log.sessions(conn, staff.tenant)
    ctx.setdefault("values", {"category": "B", "day": today(), "hours": 2})
    return page(request, "theory.html", staff, status, rows=rows, categories=CATEGORIES,
                **ctx)


@router.get("/theory")
async def theory_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return list_page(request, school, staff)


@router.post("/theory")
async def theory_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    form = await form_of(request)
    new_id, errors = save_row(school.engine, SESSION, staff.tenant, form)
    if new_id is None:
        return list_page(request, school, staff, 422, values=form, errors=errors)
    return back(f"/theory/{new_id}")


@router.get("/theory/{session_id}")
async def theory_session(request: Request, school: School, session_id: RowIdPath,
                         saved: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    session = one(school.engine, theory_sessions, staff.tenant, session_id)
    people = [p for p in listing(school.engine, candidates, staff.tenant,
                                 candidates.c.last_name, candidates.c.first_name)
              if p["active"]]
    with read_tx(school.engine) as conn:
        present = theory_log.attendees(conn, staff.tenant, session_id)
    return page(request, "theory_session.html", staff, session=session, people=people,
                present=present, saved=saved == "1")


@router.post("/theory/{session_id}/attendance")
async def theory_attendance(request: Request, school: School, session_id: RowIdPath
                            ) -> Response:
    staff = await school.access.staff(request, "members.edit")
    one(school.engine, theory_sessions, staff.tenant, session_id)
    form = await form_of(request)
    chosen = {int(k[2:]) for k, v in form.items()
              if k.startswith("c-") and k[2:].isdigit() and len(k) < 14 and v}
    with write_tx(school.engine) as conn:
        theory_log.set_attendance(conn, staff.tenant, session_id, chosen)
    return back(f"/theory/{session_id}", saved="1")
