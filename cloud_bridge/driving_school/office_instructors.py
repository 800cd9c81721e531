"""The office's instructors: the list and a new instructor with their own sign-in (the
role "instructor"). Their day's log is in ``office_lessons``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import InstructorForm, form_error
from cloud_bridge.driving_school.office_pages import back, form_of, page, today
from cloud_bridge.driving_school.office_rows import listing
from cloud_bridge.driving_school.schema import instructors

router = APIRouter(prefix=BASE, include_in_schema=False)


@router.get("/instructors")
async def instructor_list(request: Request, school: School, error: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return page(request, "instructors.html", staff, error=error, today=today(),
                rows=listing(school.engine, instructors, staff.tenant, instructors.c.name))


@router.post("/instructors")
async def instructor_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "users.manage")
    try:
        f = InstructorForm.model_validate(await form_of(request))
        user_id = school.auth.create_user(staff.tenant, f.username, f.password, "instructor")
    except ValidationError as exc:
        return back("/instructors", error=form_error(exc))
    except (IntegrityError, ValueError) as exc:
        text = "username in use" if isinstance(exc, IntegrityError) else str(exc)
        return back("/instructors", error=text)
    with write_tx(school.engine) as conn:
        conn.execute(insert(instructors).values(
            tenant=staff.tenant, user_id=user_id, name=f.name, licence_no=f.licence_no,
            categories=f.categories, active=True))
    return RedirectResponse(f"{BASE}/instructors", 303)
