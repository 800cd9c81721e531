"""The office's applications: the list of applications sent through the public API and
"accept", which enters the applicant into the register of candidates and sends them the
e-mail and SMS (``applications.accept``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cloud_bridge.db_schema import read_tx
from cloud_bridge.driving_school import applications
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.office_pages import back, page, today
from cloud_bridge.driving_school.office_rows import one
from cloud_bridge.driving_school.schema import applications as table
from cloud_bridge.driving_school.school_profile import load_profile
from cloud_bridge.param_bounds import RowIdPath

router = APIRouter(prefix=BASE, include_in_schema=False)


@router.get("/applications")
async def application_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "members.edit")
    with read_tx(school.engine) as conn:
        rows = [dict(r) for r in conn.execute(select(table).where(
            table.c.tenant == staff.tenant).order_by(table.c.status.desc(),
                                                     table.c.created_ms.desc())
            .limit(200)).mappings()]
    return page(request, "applications.html", staff, rows=rows,
                notifies=school.notifier is not None)


@router.post("/applications/{application_id}/accept")
async def application_accept(request: Request, school: School,
                             application_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    one(school.engine, table, staff.tenant, application_id)  # 404 for another tenant's
    name = load_profile(school.engine, staff.tenant, school.school_name)["name"]
    candidate_id = applications.accept(school.engine, school.notifier, staff.tenant,
                                       application_id, staff.username, name, today())
    return back(f"/candidates/{candidate_id}")
