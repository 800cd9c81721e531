"""The public application API: ``POST /driving-school/api/{tenant}/applications`` with
the applicant's data as JSON (``applications.ApplicationIn``). Only a school that has
saved its data (``ds_school``) takes applications, so an unknown tenant gets 404 and no
row. No sign-in: a school's own web site posts here. New applications are limited per sender
and per school (``apply_limits``): over a limit, 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from cloud_bridge.driving_school import applications
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.apply_limits import TooManyApplications
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.school_profile import load_profile

router = APIRouter(prefix=BASE)


def client_address(request: Request) -> str:
    """The sender's address as the server saw it (behind a proxy: what uvicorn's
    ``--forwarded-allow-ips`` lets through); only its keyed hash is ever stored."""
    return request.client.host if request.client else "unknown"


TenantPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/api/{tenant}/applications", status_code=201)
async def apply(request: Request, tenant: TenantPath, body: applications.ApplicationIn,
                school: School) -> JSONResponse:
    if not load_profile(school.engine, tenant)["saved"]:
        raise HTTPException(404, "no driving school takes applications here")
    try:
        app_id = applications.submit(school.engine, tenant, body, school.apply_limits,
                                     client_address(request))
    except TooManyApplications as exc:
        raise HTTPException(429, f"too many applications; try again in {exc.minutes} min",
                            headers={"Retry-After": str(exc.retry_after_s)}) from None
    return JSONResponse({"id": app_id, "status": "pending"}, status_code=201)
