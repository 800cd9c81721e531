"""The school's own data (name, address, registration number): the settings page. The
name heads the office pages and the record card (``school_profile``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import SchoolForm
from cloud_bridge.driving_school.office_pages import back, form_of, page
from cloud_bridge.driving_school.school_profile import load_profile, save_profile
from cloud_bridge.web.form_errors import validate_form

router = APIRouter(prefix=BASE, include_in_schema=False)


@router.get("/school")
async def school_page(request: Request, school: School, saved: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "users.manage")
    profile = load_profile(school.engine, staff.tenant, school.school_name)
    return page(request, "school.html", staff, values=profile, saved=saved == "1",
                stored=profile["saved"])


@router.post("/school")
async def school_save(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "users.manage")
    form = await form_of(request)
    model, errors = validate_form(SchoolForm, form)
    if model is None:
        return page(request, "school.html", staff, 422, values=form, errors=errors,
                    stored=True)
    save_profile(school.engine, staff.tenant, model.model_dump())
    return back("/school", saved="1")
