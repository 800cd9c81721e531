"""Fleet page: devices per site (retained state and last will), their peripherals,
outbox depth and membership version; remote commands and their results; what the
bridge refused from the tenant's devices and keeps in the quarantine."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from cloud_bridge import quarantine
from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import device_cursor, devices, read_tx, tenants, write_tx
from cloud_bridge.errors import Conflict as BridgeConflict
from cloud_bridge.web import audit
from cloud_bridge.web.auth import Staff
from cloud_bridge.web.deps import Ctx
from cloud_bridge.web.device_commands import (
    COMMAND_LABELS,
    OUTCOME_LABELS,
    UNANSWERED_NOTE,
    command_message,
    device_online,
    known_device,
    recent_commands,
    record_command,
)
from cloud_bridge.web.guards import need, route_meta
from cloud_bridge.web.rendering import render
from contracts.i18n import N_
from contracts.i18n import gettext as _

DeviceId = Annotated[str, Form(pattern=ID_PATTERN)]

# physical actions go only to a device that says it is online (docs/security.md)
PHYSICAL_COMMANDS = frozenset({"open"})
OFFLINE_REFUSAL = N_("The device is not connected: a gate is not opened remotely until it "
                     "connects again.")
# commands every device takes; "open" only a device with gates (fleet.html)
DEVICE_COMMANDS = ("reload", "resend-state")
DEVICE_KINDS = {"gate": N_("Gate controller"), "printer": N_("Till or receipt printer"),
                "other": N_("Device")}


def device_kind(peripherals: list[dict[str, Any]]) -> str:
    roles = {p.get("role") for p in peripherals}
    return "gate" if "gate" in roles else ("printer" if "printer" in roles else "other")


def device_gates(conn: Any, tenant: str, device: str) -> list[str]:
    state = conn.execute(select(devices.c.state).where(
        devices.c.tenant == tenant, devices.c.device == device)).scalar() or {}
    return [p["id"] for p in state.get("peripherals") or [] if p.get("role") == "gate"]


def fleet_rows(conn: Any, tenant: str) -> dict[str, list[dict[str, Any]]]:
    stmt = select(devices, device_cursor.c.acked_seq).select_from(devices.outerjoin(
        device_cursor, (device_cursor.c.tenant == devices.c.tenant)
        & (device_cursor.c.device == devices.c.device))).where(devices.c.tenant == tenant)
    by_site: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(stmt.order_by(devices.c.device)).mappings():
        state = r["state"] or {}
        peripherals = state.get("peripherals") or []
        row = {"device": r["device"], "online": r["online"], "last_seen": r["last_seen"],
               "version": state.get("version"), "outbox_depth": state.get("outbox_depth"),
               "membership_version": state.get("membership_version"),
               "acked_seq": r["acked_seq"] or 0, "peripherals": peripherals,
               "gates": [p["id"] for p in peripherals if p.get("role") == "gate"],
               "printers": [p["id"] for p in peripherals if p.get("role") == "printer"],
               "kind": device_kind(peripherals)}
        by_site.setdefault(str(state.get("site") or "—"), []).append(row)
    return by_site


router = APIRouter(prefix="/t/{tenant}")
Viewer = Annotated[Staff, Depends(need("fleet.view"))]
Commander = Annotated[Staff, Depends(need("fleet.command"))]


@router.get("/fleet", **route_meta("fleet.view"))
def fleet(request: Request, staff: Viewer, ctx: Ctx) -> Response:
    with read_tx(ctx.engine) as conn:
        sites = fleet_rows(conn, staff.tenant)
        cmds = recent_commands(conn, staff.tenant)
        version = conn.execute(select(tenants.c.version).where(
            tenants.c.tenant == staff.tenant)).scalar() or 0
        held = quarantine.recent(conn, staff.tenant)
        held_total = quarantine.count(conn, staff.tenant)
    now = int(time.time() * 1000)
    # refresh while a command waits (one sent before expiries: for a minute)
    waiting = any(c["outcome"] == "pending" and now - c["sent_at"] < 600_000
                  for c in cmds)
    return render(request, "fleet.html", staff, sites=sites, commands=cmds,
                  tenant_version=version, refresh=waiting, outcome_labels=OUTCOME_LABELS,
                  unanswered_note=UNANSWERED_NOTE, command_labels=COMMAND_LABELS,
                  device_commands=DEVICE_COMMANDS, device_kinds=DEVICE_KINDS,
                  quarantined=held, quarantined_total=held_total)


@router.post("/fleet/command", **route_meta("fleet.command"))
def send(staff: Commander, ctx: Ctx, device: DeviceId,
         name: Annotated[str, Form(pattern=r"^(open|reload|resend-state)$")],
         gate: Annotated[str | None, Form(pattern=ID_PATTERN)] = None,
         direction: Annotated[str, Form(pattern=r"^(in|out)$")] = "in") -> Response:
    if name == "open" and not gate:
        raise HTTPException(422, "open needs a gate")
    args: dict[str, Any] = {"gate": gate, "direction": direction} if name == "open" else {}
    with write_tx(ctx.engine) as conn:
        if not known_device(conn, staff.tenant, device):
            raise HTTPException(404, "no such device")
        if name == "open" and gate not in device_gates(conn, staff.tenant, device):
            raise HTTPException(409, "this device has no such gate")
        if name in PHYSICAL_COMMANDS and not device_online(conn, staff.tenant, device):
            raise BridgeConflict(_(OFFLINE_REFUSAL))
        expires_at = ctx.command_lifetimes.expires_at_ms(name)
        request_id = record_command(conn, staff.tenant, device, name, args, expires_at)
        audit.record(conn, staff, f"command.{name}", device,
                     {**args, "request_id": request_id})
    ctx.publisher.publish(*command_message(ctx.prefix, staff.tenant, device, name,
                                           request_id, args, expires_at))
    return RedirectResponse(f"/t/{staff.tenant}/fleet", 303)
