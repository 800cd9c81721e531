"""Remote commands from the web pages: recorded in ``commands`` (the device's
cmd-result fills in the answer, see device_reports.py), then published to the device.
Every command carries an expiry (contracts/command_expiry.py); its outcome on the pages is
pending, ok, error or expired."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select

from cloud_bridge.db_schema import commands, devices
from cloud_bridge.device_reports import command_outcome
from contracts.command_expiry import command_payload
from contracts.i18n import N_
from contracts.topics import DeviceTopics

# what the pages may send; "reprint" is the POS receipt copy (docs/pos.md)
WEB_COMMANDS = frozenset({"open", "reload", "resend-state", "reprint"})


def known_device(conn: Connection, tenant: str, device: str) -> bool:
    return conn.execute(select(devices.c.device).where(
        devices.c.tenant == tenant, devices.c.device == device)).first() is not None


def device_online(conn: Connection, tenant: str, device: str) -> bool:
    """What the device's retained state (or its last will) says now."""
    return bool(conn.execute(select(devices.c.online).where(
        devices.c.tenant == tenant, devices.c.device == device)).scalar())


def record_command(conn: Connection, tenant: str, device: str, name: str,
                   args: dict[str, Any], expires_at: int) -> str:
    if name not in WEB_COMMANDS:
        raise ValueError(f"unknown command {name!r}")
    request_id = str(uuid.uuid4())
    conn.execute(insert(commands).values(
        request_id=request_id, tenant=tenant, device=device, name=name, args=args,
        sent_at=int(time.time() * 1000), expires_at=expires_at))
    return request_id


def command_message(prefix: str, tenant: str, device: str, name: str, request_id: str,
                    args: dict[str, Any], expires_at: int) -> tuple[str, bytes]:
    return (DeviceTopics(prefix, tenant, device).cmd(name),
            command_payload(request_id, args, expires_at))


# what a person reads for each outcome and command (English msgids, translated where
# shown)
OUTCOME_LABELS = {"pending": N_("waiting for the device"), "ok": N_("done"),
                  "error": N_("failed"), "expired": N_("expired, not carried out")}
UNANSWERED_NOTE = N_("the device did not answer")
COMMAND_LABELS = {"open": N_("Open gate"), "reload": N_("Reload settings"),
                  "resend-state": N_("Report state again"), "reprint": N_("Reprint receipt")}


def recent_commands(conn: Connection, tenant: str, limit: int = 20,
                    device: str | None = None) -> list[dict[str, Any]]:
    stmt = select(commands).where(commands.c.tenant == tenant)
    if device:
        stmt = stmt.where(commands.c.device == device)
    rows = conn.execute(stmt.order_by(commands.c.sent_at.desc()).limit(limit)).mappings()
    now = int(time.time() * 1000)
    out = []
    for r in rows:
        row = dict(r)
        row["outcome"] = command_outcome(row, now)
        out.append(row)
    return out
