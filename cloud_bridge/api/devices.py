"""``/devices`` and their commands: what each device last reported, and commands sent
to it (open, reload, resend-state) with their outcome."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import Connection, insert, select

from cloud_bridge.api.deps import Ctx, EntityId, Tenant, read
from cloud_bridge.api_models import CommandIn, CommandOut
from cloud_bridge.db_schema import commands, device_cursor, devices, write_tx
from cloud_bridge.device_reports import command_outcome
from cloud_bridge.errors import Invalid, NotFound
from contracts.command_expiry import command_payload
from contracts.messages import OpenArgs
from contracts.topics import DeviceTopics

router = APIRouter()


def device_rows(c: Connection, tenant: str, device: str | None) -> list[dict[str, Any]]:
    stmt = select(devices, device_cursor.c.acked_seq).select_from(
        devices.outerjoin(device_cursor, (device_cursor.c.tenant == devices.c.tenant)
                          & (device_cursor.c.device == devices.c.device))
    ).where(devices.c.tenant == tenant)
    if device:
        stmt = stmt.where(devices.c.device == device)
    out = []
    for r in c.execute(stmt.order_by(devices.c.device)).mappings():
        out.append({"device": r["device"], "online": r["online"],
                    "last_seen": r["last_seen"], "acked_seq": r["acked_seq"] or 0,
                    "state": r["state"]})
    return out


@router.get("/devices")
def list_devices(tenant: Tenant, ctx: Ctx) -> list[dict[str, Any]]:
    return read(ctx, lambda c: device_rows(c, tenant, None))


@router.get("/devices/{device}")
def get_device(tenant: Tenant, device: EntityId, ctx: Ctx) -> dict[str, Any]:
    rows = read(ctx, lambda c: device_rows(c, tenant, device))
    if not rows:
        raise NotFound(f"device {device!r} has never reported to this bridge")
    return rows[0]


def command_args(body: CommandIn) -> dict[str, Any]:
    """The command's args as the device gets them; 422 for args it does not take."""
    if body.name == "open":
        try:
            return OpenArgs.model_validate(body.args).model_dump()
        except ValueError as exc:
            raise Invalid(f"open needs args {{gate, direction}}: "
                          f"{str(exc).splitlines()[-1].strip()}") from None
    if body.args:
        raise Invalid(f"{body.name} takes no args")
    return {}


@router.post("/devices/{device}/commands", status_code=202)
def send_command(tenant: Tenant, device: EntityId, body: CommandIn,
                 ctx: Ctx) -> dict[str, Any]:
    args = command_args(body)
    request_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    expires_at = ctx.command_lifetimes.expires_at_ms(body.name, now)
    with write_tx(ctx.engine) as conn:
        conn.execute(insert(commands).values(
            request_id=request_id, tenant=tenant, device=device, name=body.name,
            args=args, sent_at=now, expires_at=expires_at))
    ctx.publisher.publish(DeviceTopics(ctx.prefix, tenant, device).cmd(body.name),
                          command_payload(request_id, args, expires_at))
    return {"request_id": request_id, "expires_at": expires_at}


@router.get("/commands/{request_id}")
def get_command(tenant: Tenant, request_id: Annotated[str, Path(max_length=64)],
                ctx: Ctx) -> CommandOut:
    row = read(ctx, lambda c: c.execute(select(commands).where(
        commands.c.tenant == tenant, commands.c.request_id == request_id))
        .mappings().first())
    if row is None:
        raise NotFound(f"no command {request_id!r} in tenant {tenant!r}")
    return CommandOut(request_id=row["request_id"], device=row["device"], name=row["name"],
                      args=row["args"], sent_at=row["sent_at"],
                      expires_at=row["expires_at"],
                      answered=row["answered_at"] is not None, ok=row["ok"],
                      result=row["result"], error=row["error"],
                      outcome=command_outcome(dict(row), int(time.time() * 1000)))
