"""What devices report besides events: their retained state (and last will), and the
results of commands sent to them."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from sqlalchemy import Connection, or_, update

from cloud_bridge.db_schema import commands, devices, upsert
from cloud_bridge.wire import CommandResult, DeviceState
from contracts.command_expiry import EXPIRED

log = logging.getLogger(__name__)


def store_state(conn: Connection, tenant: str, device: str, state: DeviceState) -> None:
    now = int(time.time() * 1000)
    if state.ts is None:
        # the last will ({"online": false}) carries no state: keep the last one we had
        conn.execute(upsert(conn, devices, ["tenant", "device"], {
            "online": False, "last_seen": now,
        }).values(tenant=tenant, device=device, online=False, last_seen=now))
        return
    # shared subscriptions may hand two states of one device to two bridges: a state
    # older than the stored one does not overwrite it
    conn.execute(upsert(
        conn, devices, ["tenant", "device"],
        {"online": lambda ex: ex.online, "last_seen": lambda ex: ex.last_seen,
         "state": lambda ex: ex.state, "state_ts": lambda ex: ex.state_ts},
        where=lambda ex: or_(devices.c.state_ts.is_(None), devices.c.state_ts <= ex.state_ts),
    ).values(tenant=tenant, device=device, online=state.online, last_seen=now,
             state_ts=state.ts, state=state.model_dump(mode="json")))


def store_command_result(conn: Connection, tenant: str, device: str,
                         result: CommandResult) -> bool:
    """Record a result; only the device the command went to can answer it."""
    if result.request_id is None:
        log.warning("device %s/%s could not read a command: %s", tenant, device,
                    (result.error or "")[:200])
        return False
    stmt = update(commands).where(
        commands.c.request_id == result.request_id, commands.c.tenant == tenant,
        commands.c.device == device)
    if not result.ok and result.error == EXPIRED:
        # a redelivery read after the expiry: the first answer (it ran) stays the truth
        stmt = stmt.where(or_(commands.c.ok.is_(None), commands.c.ok.is_(False)))
    done = conn.execute(stmt.values(
        answered_at=int(time.time() * 1000), ok=result.ok, result=result.result,
        error=result.error)).rowcount
    if not done and result.error == EXPIRED:
        log.info("command %s from %s/%s ran before; a late 'expired' copy is ignored",
                 result.request_id[:64], tenant, device)
    elif not done:
        log.warning("result from %s/%s for unknown command %s ignored", tenant, device,
                    result.request_id[:64])
    return bool(done)


CommandOutcome = Literal["pending", "ok", "error", "expired"]


def command_outcome(row: dict[str, Any], now_ms: int) -> CommandOutcome:
    """pending, ok, error or expired: the device refused it as stale, or the expiry
    passed without a word from the device, which will refuse it as expired if it ever
    reads it (by its own clock, see docs/security.md)."""
    if row.get("answered_at") is not None:
        if row.get("ok"):
            return "ok"
        return "expired" if row.get("error") == EXPIRED else "error"
    expires_at = row.get("expires_at")
    if expires_at is not None and now_ms >= expires_at:
        return "expired"
    return "pending"
