"""Remote commands from the web pages: recorded in ``commands`` (the device's
cmd-result fills in the answer, see device_reports.py), then published to the device."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select

from cloud_bridge.db_schema import commands, devices
from sync.topics import DeviceTopics

# what the pages may send; "reprint" is the POS receipt copy (docs/pos.md)
WEB_COMMANDS = frozenset({"open", "reload", "resend-state", "reprint"})


def known_device(conn: Connection, tenant: str, device: str) -> bool:
    return conn.execute(select(devices.c.device).where(
        devices.c.tenant == tenant, devices.c.device == device)).first() is not None


def record_command(conn: Connection, tenant: str, device: str, name: str,
                   args: dict[str, Any]) -> str:
    if name not in WEB_COMMANDS:
        raise ValueError(f"unknown command {name!r}")
    request_id = str(uuid.uuid4())
    conn.execute(insert(commands).values(
        request_id=request_id, tenant=tenant, device=device, name=name, args=args,
        sent_at=int(time.time() * 1000)))
    return request_id


def command_message(prefix: str, tenant: str, device: str, name: str, request_id: str,
                    args: dict[str, Any]) -> tuple[str, bytes]:
    return (DeviceTopics(prefix, tenant, device).cmd(name),
            json.dumps({"v": 1, "request_id": request_id, "args": args}).encode())


def recent_commands(conn: Connection, tenant: str, limit: int = 20,
                    device: str | None = None) -> list[dict[str, Any]]:
    stmt = select(commands).where(commands.c.tenant == tenant)
    if device:
        stmt = stmt.where(commands.c.device == device)
    rows = conn.execute(stmt.order_by(commands.c.sent_at.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]
