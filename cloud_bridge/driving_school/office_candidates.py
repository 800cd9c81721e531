"""The office's candidates: the list, a new candidate, a candidate's page (details,
courses, lesson log) and its edit form. A refused form comes back (422) with the
messages beside the fields and what was typed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, select

from cloud_bridge.db_schema import read_tx
from cloud_bridge.driving_school import theory_log
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import CandidateForm
from cloud_bridge.driving_school.lesson_log import log_rows
from cloud_bridge.driving_school.office_pages import back, form_of, page, shown
from cloud_bridge.driving_school.office_rows import OfficeForm, exists, listing, one, save_row
from cloud_bridge.driving_school.schema import candidates, courses, instructors
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import N_
from contracts.i18n import gettext as _

router = APIRouter(prefix=BASE, include_in_schema=False)


def candidate_values(engine: Engine, form: Mapping[str, Any], tenant: str
                     ) -> tuple[dict[str, Any] | None, FieldErrors]:
    model, errors = validate_form(CandidateForm, {**form, "active": "active" in form})
    if model is None:
        return None, errors
    if not exists(engine, instructors, tenant, model.instructor_id):
        return None, {"instructor_id": _("Choose one of the offered options.")}
    return model.model_dump(), {}


CANDIDATE = OfficeForm(candidates, candidate_values,
                       in_use=("register_no", N_("This register number is already in use.")))


def list_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
              **ctx: Any) -> HTMLResponse:
    return page(request, "candidates.html", staff, status,
                rows=listing(school.engine, candidates, staff.tenant,
                             candidates.c.last_name, candidates.c.first_name),
                teachers=listing(school.engine, instructors, staff.tenant,
                                 instructors.c.name), **ctx)


@router.get("/candidates")
async def candidate_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return list_page(request, school, staff)


@router.post("/candidates")
async def candidate_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    form = await form_of(request)
    new_id, errors = save_row(school.engine, CANDIDATE, staff.tenant,
                              {**form, "active": "on"},
                              extra={"created_ms": int(time.time() * 1000)})
    if new_id is None:
        return list_page(request, school, staff, 422, values=form, errors=errors)
    return back(f"/candidates/{new_id}")


def candidate_view(request: Request, school: SchoolSettings, staff: Staff,
                   person: dict[str, Any], status: int = 200, **ctx: Any) -> HTMLResponse:
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, candidate_id=person["id"])
        their = [dict(r) for r in conn.execute(select(courses).where(
            courses.c.tenant == staff.tenant, courses.c.candidate_id == person["id"])
            .order_by(courses.c.id)).mappings()]
        theory = theory_log.candidate_theory(conn, staff.tenant, person["id"])
    ctx.setdefault("values", shown(person))
    return page(request, "candidate.html", staff, status, person=person, rows=rows,
                courses=their,
                teachers=listing(school.engine, instructors, staff.tenant,
                                 instructors.c.name),
                total=sum(r["lesson_count"] for r in rows), theory=theory,
                theory_hours=sum(t["hours"] for t in theory),
                theory_minimum=theory_log.minimum_hours(
                    their[-1]["category"] if their else "B"),
                can_print=school.publisher is not None, **ctx)


@router.get("/candidates/{candidate_id}")
async def candidate_page(request: Request, school: School, candidate_id: RowIdPath,
                         sent: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    person = one(school.engine, candidates, staff.tenant, candidate_id)
    return candidate_view(request, school, staff, person, sent=sent[:40])


@router.post("/candidates/{candidate_id}")
async def candidate_update(request: Request, school: School, candidate_id: RowIdPath
                           ) -> Response:
    staff = await school.access.staff(request, "members.edit")
    person = one(school.engine, candidates, staff.tenant, candidate_id)
    form = await form_of(request)
    saved, errors = save_row(school.engine, CANDIDATE, staff.tenant, form,
                             row_id=candidate_id)
    if saved is None:
        return candidate_view(request, school, staff, person, 422, values=form,
                              errors=errors)
    return back(f"/candidates/{candidate_id}")
