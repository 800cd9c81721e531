"""The lesson log in the office: today's lessons (the home page), a candidate's whole
log as CSV, an instructor's day (page and CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from cloud_bridge.db_schema import read_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.lesson_log import log_csv, log_rows
from cloud_bridge.driving_school.office_pages import page, today, typed_day
from cloud_bridge.driving_school.office_rows import listing, one
from cloud_bridge.driving_school.schema import candidates, instructors
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from contracts.i18n import parse_day

router = APIRouter(prefix=BASE, include_in_schema=False)


def csv_response(rows: list[dict[str, Any]], filename: str) -> Response:
    return Response(log_csv(rows), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}.csv"'})


@router.get("/")
async def home(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, day=today())
    teachers = listing(school.engine, instructors, staff.tenant, instructors.c.name)
    return page(request, "home.html", staff, rows=rows, day=today(), teachers=teachers)


@router.get("/candidates/{candidate_id}/log.csv")
async def candidate_csv(request: Request, school: School, candidate_id: RowIdPath
                        ) -> Response:
    staff = await school.access.staff(request, "lessons.view")
    person = one(school.engine, candidates, staff.tenant, candidate_id)
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
    return csv_response(rows, f"dnevnik-{person['register_no']}".replace("/", "-"))


@dataclass(frozen=True, slots=True)
class InstructorDay:
    staff: Staff
    teacher: dict[str, Any]
    day: str
    rows: list[dict[str, Any]]


async def instructor_day(request: Request, school: SchoolSettings, instructor_id: int,
                         day: str) -> InstructorDay:
    """An instructor's lessons of one day (today when not given)."""
    staff = await school.access.staff(request, "lessons.view")
    day = day or today()
    teacher = one(school.engine, instructors, staff.tenant, instructor_id)
    try:
        day = parse_day(day).isoformat()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    with read_tx(school.engine) as conn:
        rows = log_rows(conn, staff.tenant, instructor_id=instructor_id, day=day)
    return InstructorDay(staff, teacher, day, rows)


@router.get("/instructors/{instructor_id}/log")
async def instructor_log(request: Request, school: School, instructor_id: RowIdPath,
                         day: str = "") -> HTMLResponse:
    log = await instructor_day(request, school, instructor_id, day)
    return page(request, "instructor_log.html", log.staff, teacher=log.teacher,
                rows=log.rows, day=log.day, values={"day": typed_day(log.day)},
                total=sum(r["lesson_count"] for r in log.rows))


@router.get("/instructors/{instructor_id}/log.csv")
async def instructor_csv(request: Request, school: School, instructor_id: RowIdPath,
                         day: str = "") -> Response:
    log = await instructor_day(request, school, instructor_id, day)
    return csv_response(log.rows, f"dnevni-razvid-{instructor_id}-{log.day}")
