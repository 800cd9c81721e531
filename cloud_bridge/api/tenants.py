"""The tenant itself: its change-log version and public key, and pruning its change log."""

# no "from __future__ import annotations": FastAPI resolves the route signatures

import base64
from typing import Any

from fastapi import APIRouter

from cloud_bridge import change_log
from cloud_bridge.api.deps import Ctx, Tenant, read
from cloud_bridge.api_models import PruneIn
from cloud_bridge.db_schema import write_tx

router = APIRouter()


@router.get("")
def tenant_info(tenant: Tenant, ctx: Ctx) -> dict[str, Any]:
    state = read(ctx, lambda c: change_log.state(c, tenant))
    return {"tenant": tenant, "version": state.version, "log_floor": state.log_floor,
            "public_key": "base64:" + base64.b64encode(
                ctx.keys.get(tenant).public_key_raw).decode()}


@router.post("/change-log/prune")
def prune(tenant: Tenant, body: PruneIn, ctx: Ctx) -> dict[str, Any]:
    with write_tx(ctx.engine) as conn:
        removed = change_log.prune(conn, tenant, body.keep)
        state = change_log.state(conn, tenant)
    return {"removed": removed, "version": state.version, "log_floor": state.log_floor}
