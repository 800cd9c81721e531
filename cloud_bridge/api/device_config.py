"""``/devices/{device}/config``: the device's desired config (remote configuration).

PUT stores a new version after the checks of contracts/remote_config.py (the device
config schema, no device-local sections, no secrets in clear; 422 naming the key
otherwise); the bridge then delivers it signed to the device. GET shows the newest
version (or ``?version=N``) with the drift: what the device reports it runs."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from cloud_bridge.api.deps import Ctx, EntityId, Tenant, read
from cloud_bridge.db_schema import devices
from cloud_bridge.device_configs import drift_of, get_desired, set_desired
from cloud_bridge.errors import Invalid, NotFound
from contracts.device_config import DeviceConfigError

router = APIRouter()


class DesiredIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any]


def _who(request: Request) -> str:
    return f"api:{request.client.host if request.client else '?'}"


@router.put("/devices/{device}/config", status_code=201)
def put_config(tenant: Tenant, device: EntityId, body: DesiredIn, request: Request,
               ctx: Ctx) -> dict[str, Any]:
    try:
        desired = set_desired(ctx.engine, tenant, device, body.config, by=_who(request),
                              now_ms=int(time.time() * 1000))
    except DeviceConfigError as exc:
        raise Invalid(str(exc)) from None
    return {"device": device, "version": desired.version}


@router.get("/devices/{device}/config")
def get_config(tenant: Tenant, device: EntityId, ctx: Ctx,
               version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> dict[str, Any]:
    def work(conn: Any) -> tuple[Any, Any, Any]:
        wanted = get_desired(conn, tenant, device, version)
        newest = wanted if version is None else get_desired(conn, tenant, device)
        state = conn.execute(select(devices.c.state).where(
            devices.c.tenant == tenant, devices.c.device == device)).scalar()
        return wanted, newest, state

    wanted, newest, state = read(ctx, work)
    if wanted is None:
        raise NotFound(f"device {device!r} has no desired config"
                       + (f" version {version}" if version else ""))
    drift = drift_of(device, newest.version if newest else None, state)
    return {"device": device, "version": wanted.version, "config": wanted.config,
            "created_ms": wanted.created_ms, "created_by": wanted.created_by,
            "drift": drift.as_dict()}
