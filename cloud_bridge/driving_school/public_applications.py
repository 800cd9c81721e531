"""The public application API: ``POST /driving-school/api/{tenant}/applications`` with
the applicant's data as JSON (``applications.ApplicationIn``). Only a school that has
saved its data (``ds_school``) takes applications, so an unknown tenant gets 404 and no
row. No sign-in: a school's own web site posts here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import JSONResponse

from cloud_bridge.driving_school import applications
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.school_profile import load_profile

router = APIRouter(prefix=BASE)

TenantPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/api/{tenant}/applications", status_code=201)
async def apply(tenant: TenantPath, body: applications.ApplicationIn,
                school: School) -> JSONResponse:
    if not load_profile(school.engine, tenant)["saved"]:
        raise HTTPException(404, "no driving school takes applications here")
    app_id = applications.submit(school.engine, tenant, body)
    return JSONResponse({"id": app_id, "status": "pending"}, status_code=201)
