"""Device configuration page (remote configuration): per device the desired config
version kept by the bridge, the version the device reports it runs, and whether they
drift apart, with the device's reason when it rolled a config back or refused it.

The desired configs are set with ``cloud-bridge device-config set`` or the JSON API
(``PUT /api/v1/tenants/{tenant}/devices/{device}/config``); docs/technician.md,
"Remote configuration"."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from cloud_bridge.device_configs import fleet_drift
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.nav import NAV, NavItem
from cloud_bridge.web.rendering import render
from contracts.i18n import N_

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

router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("fleet.view"))]


@router.get("/device-config", **route_meta("fleet.view"))
def device_config_page(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    rows = fleet_drift(ctx.engine, staff.tenant)
    return render(request, "device_config.html", staff, rows=rows, labels=STATUS_LABELS,
                  drifting=sum(1 for r in rows if r.drift))
