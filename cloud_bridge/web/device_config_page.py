"""Device configuration pages (remote configuration): per device the desired config
version kept by the bridge, the version the device reports it runs, and whether they
drift apart, with the device's reason when it rolled a config back or refused it; per
device the desired config itself, what changed from the version before, and (for
administrators) a form to set the next version.

Desired configs are also set with ``cloud-bridge device-config set`` or the JSON API
(``PUT /api/v1/tenants/{tenant}/devices/{device}/config``); docs/technician.md,
"Remote configuration"."""

import time
import tomllib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import devices, read_tx
from cloud_bridge.device_configs import (
    config_toml,
    diff_text,
    drift_of,
    enrolment_profile,
    fleet_drift,
    get_desired,
    set_desired,
)
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.form_errors import FieldErrors, validate_form
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.nav import NAV, NavItem
from cloud_bridge.web.rendering import render
from cloud_bridge.web.roles import allowed
from contracts.device_config import DeviceConfigError
from contracts.i18n import N_
from contracts.i18n import gettext as _

NAV.append(NavItem(N_("Device configuration"), "/device-config", "fleet.view"))

# what each drift status means, as the page says it (msgids, translated in the template)
STATUS_LABELS = {
    "in_sync": N_("runs the desired config"),
    "pending": N_("not applied yet (offline or applying)"),
    "rolled_back": N_("rolled back"),
    "refused": N_("refused"),
    "no_desired": N_("no desired config"),
    "no_report": N_("has not reported its config"),
}
MAX_TOML = 64 * 1024

router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("fleet.view"))]
# a config decides which readers open which gates: administrators only, like enrolment
Editor = Annotated[Staff, Depends(need("fleet.enrol"))]
DevicePath = Annotated[str, Path(pattern=ID_PATTERN)]


class ConfigForm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    config_toml: str = Field(min_length=1, max_length=MAX_TOML)


@router.get("/device-config", **route_meta("fleet.view"))
def device_config_page(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    rows = fleet_drift(ctx.engine, staff.tenant)
    return render(request, "device_config.html", staff, rows=rows, labels=STATUS_LABELS,
                  drifting=sum(1 for r in rows if r.drift))


def _device_view(conn: Connection, tenant: str, role: str, device: str) -> dict[str, Any]:
    newest = get_desired(conn, tenant, device)
    before = (get_desired(conn, tenant, device, newest.version - 1)
              if newest is not None and newest.version > 1 else None)
    state = conn.execute(select(devices.c.state).where(
        devices.c.tenant == tenant, devices.c.device == device)).scalar()
    return {"device": device, "desired": newest, "can_edit": allowed(role, "fleet.enrol"),
            "drift": drift_of(device, newest.version if newest else None, state),
            "changes": (diff_text(before.config if before else None, newest.config,
                                  f"v{newest.version - 1}", f"v{newest.version}")
                        if newest is not None else ""),
            "values": {"config_toml": config_toml(newest.config) if newest else
                       config_toml(enrolment_profile(conn, tenant, device) or {})}}


@router.get("/device-config/{device}", **route_meta("fleet.view"))
def device_page(request: Request, device: DevicePath, staff: Viewer, ctx: Ctx,
                saved: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    with read_tx(ctx.engine) as conn:
        view = _device_view(conn, staff.tenant, staff.role, device)
    return render(request, "device_config_device.html", staff, labels=STATUS_LABELS,
                  errors={}, saved=saved, **view)


@router.post("/device-config/{device}", **route_meta("fleet.enrol"))
async def set_device_config(request: Request, device: DevicePath, staff: Editor,
                            ctx: Ctx) -> Response:
    data = await request.form()
    form, errors = validate_form(ConfigForm, data)
    if form is not None:
        version = _store(ctx, staff, device, form.config_toml, errors)
        if version is not None:
            return RedirectResponse(f"/t/{staff.tenant}/device-config/{device}?saved={version}",
                                    status_code=303)
    with read_tx(ctx.engine) as conn:
        view = _device_view(conn, staff.tenant, staff.role, device)
    view["values"] = {"config_toml": str(data.get("config_toml") or "")[:MAX_TOML]}
    return render(request, "device_config_device.html", staff, 422, labels=STATUS_LABELS,
                  errors=errors, saved=None, **view)


def _store(ctx: Any, staff: Staff, device: str, text: str, errors: FieldErrors) -> int | None:
    """The new version, or None with the reason in ``errors``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        errors["config_toml"] = _("This is not valid TOML: %(error)s") % {"error": exc}
        return None

    def trace(conn: Connection, version: int) -> None:
        audit.record(conn, staff, "device.config", device, {"version": version})

    try:
        return set_desired(ctx.engine, staff.tenant, device, raw, by=staff.username,
                           now_ms=int(time.time() * 1000), audit=trace).version
    except DeviceConfigError as exc:
        errors["config_toml"] = _("The bridge refused this config: %(error)s") % {
            "error": str(exc)}
        return None
