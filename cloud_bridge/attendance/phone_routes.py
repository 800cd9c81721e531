"""The phone punch for employees: a page the bridge serves as an installable web app
(``/phone/{tenant}``, its service worker and script) and its JSON endpoints — sign in
with the enrolment link's token and the PIN, then punch with the session the phone
keeps. The enrolment token travels in the link's fragment (``#t=...``), which a browser
never sends, so it stays out of server logs. Mounted by ``mount_attendance``; no staff
session is involved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.attendance import audit_trail
from cloud_bridge.attendance.labels import PUNCH_NAMES
from cloud_bridge.attendance.phone_enrolment import (
    WrongPin,
    phone_user,
    record_wrong_pin,
    sign_in,
)
from cloud_bridge.attendance.phone_punch import (
    PhonePunch,
    Position,
    PunchRefused,
    Recorded,
    record_phone_punch,
)
from cloud_bridge.attendance.reports import templates
from cloud_bridge.db_schema import write_tx
from cloud_bridge.errors import Unauthorized
from contracts.punch_types import PunchType

router = APIRouter(tags=["attendance phone"])
_STATIC = Path(__file__).parent / "static"
_Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignInBody(_In):
    token: Annotated[str, StringConstraints(min_length=16, max_length=64)]
    pin: Annotated[str, StringConstraints(pattern=r"^\d{4,8}$")]


class PunchBody(_In):
    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")]
    type: PunchType
    at: datetime = Field(description="when it happened, by the phone's clock")
    sent_at: datetime = Field(description="when the phone sent it, by its clock")
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    accuracy: Annotated[float, Field(ge=0, le=100_000)] | None = None


def _engine(request: Request) -> Any:
    # the AttendanceContext mount_attendance keeps (api.py imports this module)
    return request.app.state.attendance_context.engine


@router.get("/phone/{tenant}", response_class=HTMLResponse)
def phone_page(request: Request, tenant: _Id) -> Response:
    return templates.TemplateResponse(request, "phone.html", {
        "tenant": tenant, "punch_types": list(PunchType), "punch_names": PUNCH_NAMES})


@router.get("/phone-app/phone.js")
def phone_script() -> Response:
    return FileResponse(_STATIC / "phone.js", media_type="text/javascript")


@router.get("/phone-app/fence_pad.js")
def fence_pad_script() -> Response:
    # the geofence drawing pad of the staff page /t/{tenant}/phones (phone_admin_page.py)
    return FileResponse(_STATIC / "fence_pad.js", media_type="text/javascript")


@router.get("/phone/{tenant}/sw.js")
def service_worker(tenant: _Id) -> Response:
    # served under /phone/{tenant}/ so that its scope covers the tenant's page
    return FileResponse(_STATIC / "phone_sw.js", media_type="text/javascript",
                        headers={"Service-Worker-Allowed": f"/phone/{tenant}"})


PHONE_COOKIE = "edc_phone"


@router.post("/api/v1/phone/{tenant}/session")
def phone_sign_in(request: Request, tenant: _Id, body: SignInBody) -> Response:
    try:
        with write_tx(_engine(request)) as conn:
            session, employee = sign_in(conn, tenant, body.token, body.pin)
    except WrongPin as exc:  # counted apart: the sign-in's own transaction rolled back
        with write_tx(_engine(request)) as conn:
            record_wrong_pin(conn, exc.enrolment)
        raise
    resp = JSONResponse({"session": session, "employee": employee})
    # the same session as a cookie for the employee's own pages (phone_self_routes.py);
    # the punch API takes it only as a bearer header, so a cross-site form cannot punch
    resp.set_cookie(PHONE_COOKIE, session, max_age=400 * 24 * 3600, path=f"/phone/{tenant}",
                    httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("this phone is not signed in")
    return authorization.removeprefix("Bearer ")


@router.post("/api/v1/phone/punch", status_code=201)
async def phone_punch(request: Request, body: PunchBody,
                      authorization: Annotated[str | None, Header()] = None) -> Response:
    # async: the event loop only parses and answers; the database work runs in the
    # writer (group_writer.py on SQLite) or the thread pool, never on the loop
    session = _bearer(authorization)
    position = (Position(body.lat, body.lon, body.accuracy or 0.0)
                if body.lat is not None and body.lon is not None else None)
    punch = PhonePunch(body.id, body.type, _aware(body.at), _aware(body.sent_at), position)
    ctx = request.app.state.attendance_context
    head_key, keeper = ctx.phone_head_key, ctx.partition_keeper

    def store(conn: Connection) -> Recorded:
        user = phone_user(conn, session)
        return record_phone_punch(conn, user, punch, datetime.now(UTC),
                                  head_key(user.tenant) if head_key is not None else None,
                                  keeper)

    for attempt in (1, 2):  # two punches of one employee at once: the loser retries
        try:
            done: Recorded = await _write(request, store)
            break
        except PunchRefused as exc:
            # nothing of the refused punch is stored; the refusal itself is audited
            await _write(request, partial(_audit_refusal, session=session, refusal=exc,
                                          kind=body.type))
            return JSONResponse({"detail": str(exc), "reason": exc.reason}, 403)
        except IntegrityError:
            if attempt == 2:
                raise
    if keeper is not None:
        keeper.committed(set(done.new_months))
    return JSONResponse(done.as_dict(), 200 if done.duplicate else 201)


async def _write(request: Request, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` in a write transaction: grouped with the other punches of the
    moment on SQLite (the context's writer), its own one in the thread pool otherwise."""
    ctx = request.app.state.attendance_context
    if ctx.punch_writer is not None:
        return cast(T, await asyncio.wrap_future(ctx.punch_writer.submit(work)))

    def alone() -> T:
        with write_tx(ctx.engine) as conn:
            return work(conn)

    return await run_in_threadpool(alone)


def _audit_refusal(conn: Connection, *, session: str, refusal: PunchRefused,
                   kind: PunchType) -> None:
    user = phone_user(conn, session)
    audit_trail.record(conn, user.tenant, f"employee:{user.employee}", "phone_refused",
                       f"employee:{user.employee}",
                       {"reason": refusal.reason, "type": kind.value, "site": user.site})


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
