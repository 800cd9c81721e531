"""The office's pages: candidates, instructors, vehicles, courses; the lesson log per
candidate and per instructor and day (HTML, CSV, printable record card); the "print
record card" action. Server-rendered Jinja2, forms with the session's CSRF token."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloud_bridge.db_schema import read_tx, write_tx
from cloud_bridge.driving_school.access import (
    BASE,
    SchoolAccess,
    safe_next,
    set_session_cookie,
)
from cloud_bridge.driving_school.card_command import Publisher, send_print_record_card
from cloud_bridge.driving_school.forms import (
    CATEGORIES,
    CandidateForm,
    CourseForm,
    InstructorForm,
    VehicleForm,
    form_error,
)
from cloud_bridge.driving_school.lesson_log import log_csv, log_rows, record_card
from cloud_bridge.driving_school.lesson_sync import CONFLICT_RULE, LESSON_TYPES, LOCAL_TZ
from cloud_bridge.driving_school.schema import candidates, courses, instructors, vehicles
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import COOKIE, LoginRefused, Staff, WebAuth
from cloud_bridge.web.roles import allowed
from contracts.command_expiry import CommandLifetimes

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_DEVICE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
LOGIN_CSRF_COOKIE = "es_ds_login_csrf"


def _today() -> str:
    return datetime.now(LOCAL_TZ).strftime("%Y-%m-%d")


def _ms_local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local_ms"] = _ms_local


def back(path: str, **params: str) -> RedirectResponse:
    """303 to a page of this module, with a message in the query string."""
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{BASE}{path}" + (f"?{query}" if query else ""), 303)


def office_router(engine: Engine, auth: WebAuth, access: SchoolAccess, *,
                  publisher: Publisher | None, prefix: str,
                  school_name: str | None,
                  command_lifetimes: CommandLifetimes | None = None) -> APIRouter:
    router = APIRouter(prefix=BASE, include_in_schema=False)

    def page(request: Request, name: str, staff: Staff | None, status: int = 200,
             **ctx: Any) -> HTMLResponse:
        can = {p: staff is not None and allowed(staff.role, p)
               for p in ("members.edit", "users.manage", "lessons.view")}
        return templates.TemplateResponse(request, name, {
            "staff": staff, "csrf": staff.csrf if staff else "", "can": can, "base": BASE,
            "conflict_rule": CONFLICT_RULE, "lesson_types": LESSON_TYPES, **ctx},
            status_code=status)

    async def form_of(request: Request) -> dict[str, Any]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}

    def one(table: Any, tenant: str, row_id: int) -> dict[str, Any]:
        with read_tx(engine) as conn:
            row = conn.execute(select(table).where(table.c.tenant == tenant,
                                                   table.c.id == row_id)).mappings().first()
        if row is None:
            raise HTTPException(404, "not found")
        return dict(row)

    def listing(table: Any, tenant: str, *order: Any) -> list[dict[str, Any]]:
        with read_tx(engine) as conn:
            return [dict(r) for r in conn.execute(
                select(table).where(table.c.tenant == tenant).order_by(*order)).mappings()]

    # -- sign-in -------------------------------------------------------------------------

    def login_page(request: Request, target: str, error: str = "", status: int = 200
                   ) -> HTMLResponse:
        # double submit: the form's token must match a cookie set with it, so another
        # site cannot sign a browser into the other site's account (login CSRF)
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", None, status, next=target, error=error,
                        login_csrf=token)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=auth.secure_cookies, path=f"{BASE}/login")
        return response

    @router.get("/login")
    def login_form(request: Request, next: str = "") -> HTMLResponse:
        return login_page(request, safe_next(next))

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        target = safe_next(form.get("next"))
        sent, expected = form.get("login_csrf", ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not sent or not hmac.compare_digest(sent, expected):
            return login_page(request, target, "the form expired; sign in again", 403)
        client = request.client.host if request.client else "unknown"
        try:
            cookie, _staff = auth.login(form.get("username", ""), form.get("password", ""),
                                        client)
        except LoginRefused as exc:
            return login_page(request, target, str(exc), 401)
        response = RedirectResponse(target, 303)
        set_session_cookie(response, cookie, auth)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        await access.staff(request, "lessons.view")
        auth.logout(request.cookies.get(COOKIE))
        response = RedirectResponse(f"{BASE}/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- home: today's lessons --------------------------------------------------------------

    @router.get("/")
    async def home(request: Request) -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        with read_tx(engine) as conn:
            rows = log_rows(conn, staff.tenant, day=_today())
        teachers = listing(instructors, staff.tenant, instructors.c.name)
        return page(request, "home.html", staff, rows=rows, day=_today(), teachers=teachers)

    # -- candidates ---------------------------------------------------------------------------

    @router.get("/candidates")
    async def candidate_list(request: Request, error: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        return page(request, "candidates.html", staff, error=error,
                    rows=listing(candidates, staff.tenant, candidates.c.last_name,
                                 candidates.c.first_name),
                    teachers=listing(instructors, staff.tenant, instructors.c.name))

    def candidate_values(form: dict[str, Any], tenant: str) -> dict[str, Any]:
        values = CandidateForm.model_validate({**form, "active": "active" in form}
                                              ).model_dump()
        if values["instructor_id"] is not None:
            one(instructors, tenant, values["instructor_id"])
        return values

    @router.post("/candidates")
    async def candidate_create(request: Request) -> Response:
        staff = await access.staff(request, "members.edit")
        form = await form_of(request)
        try:
            values = candidate_values({**form, "active": "on"}, staff.tenant)
            with write_tx(engine) as conn:
                new_id = conn.execute(insert(candidates).values(
                    tenant=staff.tenant, created_ms=int(time.time() * 1000), **values)
                ).inserted_primary_key[0]  # type: ignore[index]
        except ValidationError as exc:
            return back("/candidates", error=form_error(exc))
        except IntegrityError:
            return back("/candidates", error="register number in use")
        return RedirectResponse(f"{BASE}/candidates/{new_id}", 303)

    @router.get("/candidates/{candidate_id}")
    async def candidate_page(request: Request, candidate_id: RowIdPath, error: str = "",
                             sent: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        person = one(candidates, staff.tenant, candidate_id)
        with read_tx(engine) as conn:
            rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
            their = [dict(r) for r in conn.execute(select(courses).where(
                courses.c.tenant == staff.tenant, courses.c.candidate_id == candidate_id)
                .order_by(courses.c.id)).mappings()]
        return page(request, "candidate.html", staff, person=person, rows=rows,
                    courses=their, error=error, sent=sent,
                    teachers=listing(instructors, staff.tenant, instructors.c.name),
                    total=sum(r["lesson_count"] for r in rows),
                    can_print=publisher is not None)

    @router.post("/candidates/{candidate_id}")
    async def candidate_update(request: Request, candidate_id: RowIdPath) -> Response:
        staff = await access.staff(request, "members.edit")
        one(candidates, staff.tenant, candidate_id)
        form = await form_of(request)
        try:
            values = candidate_values(form, staff.tenant)
            with write_tx(engine) as conn:
                conn.execute(update(candidates).where(
                    candidates.c.tenant == staff.tenant, candidates.c.id == candidate_id
                ).values(**values))
        except ValidationError as exc:
            return back(f"/candidates/{candidate_id}", error=form_error(exc))
        except IntegrityError:
            return back(f"/candidates/{candidate_id}", error="register number in use")
        return RedirectResponse(f"{BASE}/candidates/{candidate_id}", 303)

    @router.get("/candidates/{candidate_id}/log.csv")
    async def candidate_csv(request: Request, candidate_id: RowIdPath) -> Response:
        staff = await access.staff(request, "lessons.view")
        person = one(candidates, staff.tenant, candidate_id)
        with read_tx(engine) as conn:
            rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
        name = f"dnevnik-{person['register_no']}".replace("/", "-")
        return Response(log_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"'})

    def card_of(staff: Staff, candidate_id: int) -> dict[str, Any]:
        with read_tx(engine) as conn:
            card = record_card(conn, staff.tenant, candidate_id, school_name or staff.tenant)
        if card is None:
            raise HTTPException(404, "not found")
        return card

    @router.get("/candidates/{candidate_id}/card")
    async def candidate_card(request: Request, candidate_id: RowIdPath) -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        with read_tx(engine) as conn:
            rows = log_rows(conn, staff.tenant, candidate_id=candidate_id)
        return page(request, "card.html", staff, card=card_of(staff, candidate_id),
                    rows=rows, printed=datetime.now(LOCAL_TZ).strftime("%d. %m. %Y %H:%M"))

    @router.post("/candidates/{candidate_id}/print-card")
    async def print_card(request: Request, candidate_id: RowIdPath) -> Response:
        staff = await access.staff(request, "members.edit")
        if publisher is None:
            raise HTTPException(503, "this bridge has no device link to send commands on")
        form = await form_of(request)
        device, printer = form.get("device", "").strip(), form.get("printer", "").strip()
        if not re.match(_DEVICE, device) or (printer and not re.match(_DEVICE, printer)):
            return back(f"/candidates/{candidate_id}",
                        error="device and printer are ids like office-1")
        request_id = send_print_record_card(engine, publisher, prefix, staff.tenant, device,
                                            card_of(staff, candidate_id), printer or None,
                                            lifetimes=command_lifetimes)
        return back(f"/candidates/{candidate_id}", sent=request_id)

    # -- instructors ----------------------------------------------------------------------------

    @router.get("/instructors")
    async def instructor_list(request: Request, error: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        return page(request, "instructors.html", staff, error=error, today=_today(),
                    rows=listing(instructors, staff.tenant, instructors.c.name))

    @router.post("/instructors")
    async def instructor_create(request: Request) -> Response:
        staff = await access.staff(request, "users.manage")
        try:
            f = InstructorForm.model_validate(await form_of(request))
            user_id = auth.create_user(staff.tenant, f.username, f.password, "instructor")
        except ValidationError as exc:
            return back("/instructors", error=form_error(exc))
        except (IntegrityError, ValueError) as exc:
            text = "username in use" if isinstance(exc, IntegrityError) else str(exc)
            return back("/instructors", error=text)
        with write_tx(engine) as conn:
            conn.execute(insert(instructors).values(
                tenant=staff.tenant, user_id=user_id, name=f.name, licence_no=f.licence_no,
                categories=f.categories, active=True))
        return RedirectResponse(f"{BASE}/instructors", 303)

    def instructor_day(staff: Staff, instructor_id: int, day: str) -> tuple[Any, list[Any]]:
        teacher = one(instructors, staff.tenant, instructor_id)
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise HTTPException(422, "day must be YYYY-MM-DD") from None
        with read_tx(engine) as conn:
            return teacher, log_rows(conn, staff.tenant, instructor_id=instructor_id, day=day)

    @router.get("/instructors/{instructor_id}/log")
    async def instructor_log(request: Request, instructor_id: RowIdPath, day: str = ""
                             ) -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        day = day or _today()
        teacher, rows = instructor_day(staff, instructor_id, day)
        return page(request, "instructor_log.html", staff, teacher=teacher, rows=rows,
                    day=day, total=sum(r["lesson_count"] for r in rows))

    @router.get("/instructors/{instructor_id}/log.csv")
    async def instructor_csv(request: Request, instructor_id: RowIdPath, day: str = "") -> Response:
        staff = await access.staff(request, "lessons.view")
        day = day or _today()
        _teacher, rows = instructor_day(staff, instructor_id, day)
        return Response(log_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition":
                f'attachment; filename="dnevni-razvid-{instructor_id}-{day}.csv"'})

    # -- vehicles --------------------------------------------------------------------------------

    @router.get("/vehicles")
    async def vehicle_list(request: Request, error: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        return page(request, "vehicles.html", staff, error=error, categories=CATEGORIES,
                    rows=listing(vehicles, staff.tenant, vehicles.c.registration))

    @router.post("/vehicles")
    async def vehicle_create(request: Request) -> Response:
        staff = await access.staff(request, "members.edit")
        try:
            f = VehicleForm.model_validate(await form_of(request))
            with write_tx(engine) as conn:
                conn.execute(insert(vehicles).values(tenant=staff.tenant, active=True,
                                                     **f.model_dump()))
        except ValidationError as exc:
            return back("/vehicles", error=form_error(exc))
        except IntegrityError:
            return back("/vehicles", error="registration in use")
        return RedirectResponse(f"{BASE}/vehicles", 303)

    @router.post("/vehicles/{vehicle_id}/active")
    async def vehicle_toggle(request: Request, vehicle_id: RowIdPath) -> Response:
        staff = await access.staff(request, "members.edit")
        car = one(vehicles, staff.tenant, vehicle_id)
        with write_tx(engine) as conn:
            conn.execute(update(vehicles).where(vehicles.c.tenant == staff.tenant,
                                                vehicles.c.id == vehicle_id)
                         .values(active=not car["active"]))
        return RedirectResponse(f"{BASE}/vehicles", 303)

    # -- courses ----------------------------------------------------------------------------------

    @router.get("/courses")
    async def course_list(request: Request, error: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        people = {c["id"]: c for c in listing(candidates, staff.tenant, candidates.c.last_name)}
        return page(request, "courses.html", staff, error=error, categories=CATEGORIES,
                    rows=listing(courses, staff.tenant, courses.c.started_on.desc()),
                    people=people)

    def course_values(form: dict[str, Any], tenant: str) -> dict[str, Any]:
        values = CourseForm.model_validate(form).model_dump()
        one(candidates, tenant, values["candidate_id"])
        return values

    @router.post("/courses")
    async def course_create(request: Request) -> Response:
        staff = await access.staff(request, "members.edit")
        try:
            values = course_values(await form_of(request), staff.tenant)
        except ValidationError as exc:
            return back("/courses", error=form_error(exc))
        with write_tx(engine) as conn:
            conn.execute(insert(courses).values(tenant=staff.tenant, **values))
        return RedirectResponse(f"{BASE}/courses", 303)

    @router.get("/courses/{course_id}")
    async def course_page(request: Request, course_id: RowIdPath, error: str = "") -> HTMLResponse:
        staff = await access.staff(request, "lessons.view")
        course = one(courses, staff.tenant, course_id)
        person = one(candidates, staff.tenant, course["candidate_id"])
        return page(request, "course.html", staff, course=course, person=person,
                    error=error, categories=CATEGORIES)

    @router.post("/courses/{course_id}")
    async def course_update(request: Request, course_id: RowIdPath) -> Response:
        staff = await access.staff(request, "members.edit")
        course = one(courses, staff.tenant, course_id)
        try:
            values = course_values({**await form_of(request),
                                    "candidate_id": course["candidate_id"]}, staff.tenant)
        except ValidationError as exc:
            return back(f"/courses/{course_id}", error=form_error(exc))
        with write_tx(engine) as conn:
            conn.execute(update(courses).where(courses.c.tenant == staff.tenant,
                                               courses.c.id == course_id).values(**values))
        return RedirectResponse(f"{BASE}/candidates/{course['candidate_id']}", 303)

    return router
