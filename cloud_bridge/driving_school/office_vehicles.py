"""The office's vehicles: the list, a new vehicle, taking one out of (or back into) use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine, update

from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School
from cloud_bridge.driving_school.forms import CATEGORIES, VehicleForm
from cloud_bridge.driving_school.office_pages import form_of, page
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import vehicles
from cloud_bridge.param_bounds import RowIdPath

router = APIRouter(prefix=BASE, include_in_schema=False)


def vehicle_values(_engine: Engine, form: dict[str, Any], _tenant: str) -> dict[str, Any]:
    return VehicleForm.model_validate(form).model_dump()


VEHICLE = OfficeForm(vehicles, vehicle_values, in_use="registration in use")


@router.get("/vehicles")
async def vehicle_list(request: Request, school: School, error: str = "") -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return page(request, "vehicles.html", staff, error=error, categories=CATEGORIES,
                rows=listing(school.engine, vehicles, staff.tenant, vehicles.c.registration))


@router.post("/vehicles")
async def vehicle_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    return save_row(school.engine, VEHICLE, staff.tenant, await form_of(request),
                    error_path="/vehicles", done="/vehicles", extra={"active": True})


@router.post("/vehicles/{vehicle_id}/active")
async def vehicle_toggle(request: Request, school: School, vehicle_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    car = one(school.engine, vehicles, staff.tenant, vehicle_id)
    with write_tx(school.engine) as conn:
        conn.execute(update(vehicles).where(vehicles.c.tenant == staff.tenant,
                                            vehicles.c.id == vehicle_id)
                     .values(active=not car["active"]))
    return RedirectResponse(f"{BASE}/vehicles", 303)
