"""The instructor's tablet: the JSON API of the offline app (sign-in, data to cache,
lesson sync). The app's shell is served by ``tablet_shell``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school.access import SchoolAccess, set_session_cookie
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.lesson_sync import (
    LOCAL_TZ,
    Editor,
    SyncIn,
    apply_edit,
    conflict_notes,
    conflict_rule,
    lesson_out,
    lesson_types,
)
from cloud_bridge.driving_school.schema import candidates, courses, lessons, vehicles
from cloud_bridge.driving_school.tablet_shell import APP
from cloud_bridge.web.auth import COOKIE, LoginRefused, Staff
from contracts.i18n import gettext as _

RECENT_DAYS = 7  # lessons a tablet keeps to show and to edit


def bootstrap(engine: Engine, access: SchoolAccess, staff: Staff) -> dict[str, Any]:
    me = access.instructor(staff)
    since = (datetime.now(LOCAL_TZ) - timedelta(days=RECENT_DAYS)).strftime("%Y-%m-%d")
    with read_tx(engine) as conn:
        done = dict(tuple(r) for r in conn.execute(
            select(lessons.c.candidate_id, func.sum(lessons.c.lesson_count))
            .where(lessons.c.tenant == staff.tenant)
            .group_by(lessons.c.candidate_id)).all())
        course = {r.candidate_id: r for r in conn.execute(
            select(courses).where(courses.c.tenant == staff.tenant)
            .order_by(courses.c.id))}
        people = [{"id": r.id, "first_name": r.first_name, "last_name": r.last_name,
                   "register_no": r.register_no,
                   "category": course[r.id].category if r.id in course else "",
                   "required_lessons": course[r.id].required_lessons if r.id in course else 0,
                   "lessons_done": int(done.get(r.id) or 0),
                   # "today's candidates" are the instructor's own; the others are there
                   # for a substitute lesson
                   "mine": r.instructor_id == me["id"]}
                  for r in conn.execute(select(candidates).where(
                      candidates.c.tenant == staff.tenant, candidates.c.active.is_(True))
                      .order_by(candidates.c.last_name, candidates.c.first_name))]
        people.sort(key=lambda c: not c["mine"])  # stable: own candidates first
        last_km = dict(tuple(r) for r in conn.execute(
            select(lessons.c.vehicle_id, func.max(lessons.c.km_end))
            .where(lessons.c.tenant == staff.tenant)
            .group_by(lessons.c.vehicle_id)).all())
        cars = [{"id": r.id, "registration": r.registration, "make_model": r.make_model,
                 "category": r.category, "last_km": int(last_km.get(r.id) or 0)}
                for r in conn.execute(select(vehicles).where(
                    vehicles.c.tenant == staff.tenant, vehicles.c.active.is_(True))
                    .order_by(vehicles.c.registration))]
        mine = [lesson_out(r) for r in conn.execute(select(lessons).where(
            lessons.c.tenant == staff.tenant, lessons.c.instructor_id == me["id"],
            lessons.c.day >= since).order_by(lessons.c.started_at)).mappings()]
        notes = conflict_notes(conn, staff.tenant, [x["id"] for x in mine])
    for lesson in mine:
        lesson["conflicts"] = notes.get(lesson["id"], [])
    return {"username": staff.username, "tenant": staff.tenant, "csrf": staff.csrf,
            "instructor": {"id": me["id"], "name": me["name"]},
            "candidates": people, "vehicles": cars, "lessons": mine,
            "lesson_types": lesson_types(), "conflict_rule": conflict_rule(),
            "server_time": datetime.now(UTC).isoformat()}


router = APIRouter(prefix=APP)


@router.post("/api/login")
async def login(request: Request, school: School) -> JSONResponse:
    # JSON only: a cross-site form cannot send application/json without CORS, so
    # another site cannot sign a tablet into its own account (login CSRF)
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(415, "send JSON")
    body = await request.json()
    if not isinstance(body, dict):
        raise HTTPException(422, "expected {username, password}")
    client = request.client.host if request.client else "unknown"
    try:
        cookie, staff = school.auth.login(str(body.get("username", "")),
                                          str(body.get("password", "")), client)
    except LoginRefused as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        text = (_("Too many failed sign-ins; try again in %(s)d s.") % {"s": exc.retry_after_s}
                if exc.retry_after_s else _("Wrong username or password."))
        raise HTTPException(429 if exc.retry_after_s else 401, text, headers=headers) from None
    try:
        data = bootstrap(school.engine, school.access, staff)
    except HTTPException:
        school.auth.logout(cookie)
        raise
    response = JSONResponse(data)
    set_session_cookie(response, cookie, school.auth)
    return response


@router.get("/api/bootstrap")
async def get_bootstrap(request: Request, school: School) -> dict[str, Any]:
    staff = await school.access.staff(request, "lessons.record")
    return bootstrap(school.engine, school.access, staff)


@router.post("/api/sync")
async def sync(request: Request, school: School) -> dict[str, Any]:
    staff = await school.access.staff(request, "lessons.record")  # checks X-CSRF-Token
    me = school.access.instructor(staff)
    try:
        body = SyncIn.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        raise HTTPException(422, f"bad sync request: {exc}") from None
    editor = Editor(staff.tenant, me["id"], staff.username, body.device)
    results = []
    for raw in body.edits:
        # one transaction per edit: a refused edit does not hold back the others
        with write_tx(school.engine) as conn:
            results.append(apply_edit(conn, editor, raw, int(time.time() * 1000)))
    return {"results": results}


@router.post("/api/logout")
async def logout(request: Request, school: School) -> JSONResponse:
    await school.access.staff(request, "lessons.record")
    school.auth.logout(request.cookies.get(COOKIE))
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/")
    return response
