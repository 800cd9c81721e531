"""The "print record card" action: a ``print-record-card`` device command to the office
agent, in the format of ``cloud_bridge/api.py`` send_command (docs/protocol.md,
"Commands"): stored in ``commands`` first, so its result can be looked up by request id
(``GET /api/v1/tenants/{t}/commands/{request_id}``), then published on
``{prefix}/{tenant}/{device}/cmd/print-record-card``."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, insert

from cloud_bridge.db_schema import commands, write_tx
from contracts.command_expiry import CommandLifetimes, command_payload
from contracts.messages import MAX_COMMAND_BYTES
from contracts.topics import DeviceTopics

COMMAND = "print-record-card"
MAX_CARD_LESSONS = 100  # keeps the command far below MAX_COMMAND_BYTES


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> Any: ...


def send_command(engine: Engine, publisher: Publisher, prefix: str, tenant: str,
                 device: str, name: str, args: dict[str, Any],
                 lifetimes: CommandLifetimes | None = None,
                 stored_args: dict[str, Any] | None = None) -> str:
    """Store the command in ``commands`` (its result is looked up by request id), then
    publish it; the request id. ``stored_args`` replaces what is stored of ``args`` when
    they carry a secret the device needs but the table must not keep (a ticket's code)."""
    request_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    expires_at = (lifetimes or CommandLifetimes()).expires_at_ms(name, now)
    payload = command_payload(request_id, args, expires_at)
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError(f"the {name} command is too large for one message")
    with write_tx(engine) as conn:
        conn.execute(insert(commands).values(
            request_id=request_id, tenant=tenant, device=device, name=name,
            args=args if stored_args is None else stored_args,
            sent_at=now, expires_at=expires_at))
    publisher.publish(DeviceTopics(prefix, tenant, device).cmd(name), payload)
    return request_id


def send_print_record_card(engine: Engine, publisher: Publisher, prefix: str, tenant: str,
                           device: str, card: dict[str, Any], printer: str | None,
                           lifetimes: CommandLifetimes | None = None) -> str:
    issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    card = {**card, "issued_at": issued,
            "lessons": card.get("lessons", [])[-MAX_CARD_LESSONS:]}
    args: dict[str, Any] = {"card": card}
    if printer:
        args["printer"] = printer
    return send_command(engine, publisher, prefix, tenant, device, COMMAND, args, lifetimes)
