"""The office's vehicles: the list, a new vehicle, editing one, taking one out of (or
back into) use (the tablets offer only vehicles in use)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, update

from cloud_bridge.db_schema import write_tx
from cloud_bridge.driving_school.access import BASE
from cloud_bridge.driving_school.deps import School, SchoolSettings
from cloud_bridge.driving_school.forms import CATEGORIES, VehicleForm
from cloud_bridge.driving_school.office_pages import back, form_of, page, shown
from cloud_bridge.driving_school.office_rows import OfficeForm, listing, one, save_row
from cloud_bridge.driving_school.schema import vehicles
from cloud_bridge.param_bounds import RowIdPath
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from contracts.i18n import N_

router = APIRouter(prefix=BASE, include_in_schema=False)


def vehicle_values(_engine: Engine, form: Mapping[str, Any], _tenant: str
                   ) -> tuple[dict[str, Any] | None, FieldErrors]:
    model, errors = validate_form(VehicleForm, form)
    return (model.model_dump() if model else None), errors


VEHICLE = OfficeForm(vehicles, vehicle_values,
                     in_use=("registration", N_("A vehicle with this registration is "
                                                "already in the list.")))


def list_page(request: Request, school: SchoolSettings, staff: Staff, status: int = 200,
              **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", {"category": "B"})
    return page(request, "vehicles.html", staff, status, categories=CATEGORIES,
                rows=listing(school.engine, vehicles, staff.tenant,
                             vehicles.c.active.desc(), vehicles.c.registration), **ctx)


@router.get("/vehicles")
async def vehicle_list(request: Request, school: School) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return list_page(request, school, staff)


@router.post("/vehicles")
async def vehicle_create(request: Request, school: School) -> Response:
    staff = await school.access.staff(request, "members.edit")
    form = await form_of(request)
    new_id, errors = save_row(school.engine, VEHICLE, staff.tenant, form,
                              extra={"active": True})
    if new_id is None:
        return list_page(request, school, staff, 422, values=form, errors=errors)
    return back("/vehicles")


def edit_page(request: Request, staff: Staff, car: dict[str, Any], status: int = 200,
              **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", shown(car))
    return page(request, "vehicle.html", staff, status, car=car, categories=CATEGORIES,
                **ctx)


@router.get("/vehicles/{vehicle_id}")
async def vehicle_page(request: Request, school: School, vehicle_id: RowIdPath
                       ) -> HTMLResponse:
    staff = await school.access.staff(request, "lessons.view")
    return edit_page(request, staff, one(school.engine, vehicles, staff.tenant, vehicle_id))


@router.post("/vehicles/{vehicle_id}")
async def vehicle_update(request: Request, school: School, vehicle_id: RowIdPath
                         ) -> Response:
    staff = await school.access.staff(request, "members.edit")
    car = one(school.engine, vehicles, staff.tenant, vehicle_id)
    form = await form_of(request)
    saved, errors = save_row(school.engine, VEHICLE, staff.tenant, form, row_id=vehicle_id)
    if saved is None:
        return edit_page(request, staff, car, 422, values=form, errors=errors)
    return back("/vehicles")


@router.post("/vehicles/{vehicle_id}/active")
async def vehicle_toggle(request: Request, school: School, vehicle_id: RowIdPath) -> Response:
    staff = await school.access.staff(request, "members.edit")
    car = one(school.engine, vehicles, staff.tenant, vehicle_id)
    with write_tx(school.engine) as conn:
        conn.execute(update(vehicles).where(vehicles.c.tenant == staff.tenant,
                                            vehicles.c.id == vehicle_id)
                     .values(active=not car["active"]))
    return back("/vehicles")
