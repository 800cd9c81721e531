"""``/events``: what the devices reported, by device and sequence number."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import RowMapping, select

from cloud_bridge.api.deps import Ctx, EntityId, Limit, Tenant, read
from cloud_bridge.api_models import ID_PATTERN
from cloud_bridge.db_schema import events
from cloud_bridge.errors import NotFound
from cloud_bridge.param_bounds import SeqAfterQuery, SeqPath

router = APIRouter()


def event_out(r: RowMapping) -> dict[str, Any]:
    return {"id": r["id"], "tenant": r["tenant"], "device": r["device"], "seq": r["seq"],
            "ts": r["ts"], "type": r["type"], "data": r["data"],
            "received_at": r["received_at"]}


@router.get("/events")
def list_events(
    tenant: Tenant,
    ctx: Ctx,
    device: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since_seq: SeqAfterQuery = 0,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    stmt = select(events).where(events.c.tenant == tenant, events.c.seq > since_seq)
    if device:
        stmt = stmt.where(events.c.device == device)
    if type:
        stmt = stmt.where(events.c.type == type)
    stmt = stmt.order_by(events.c.device, events.c.seq).limit(limit)
    return [event_out(r) for r in read(ctx, lambda c: c.execute(stmt).mappings().all())]


@router.get("/events/{device}/{seq}")
def get_event(tenant: Tenant, device: EntityId, seq: SeqPath, ctx: Ctx) -> dict[str, Any]:
    row = read(ctx, lambda c: c.execute(select(events).where(
        events.c.tenant == tenant, events.c.device == device, events.c.seq == seq))
        .mappings().first())
    if row is None:
        raise NotFound(f"no event {seq} of device {device!r}")
    return event_out(row)
