"""Immutable events as DESIGN.md fixes them: id (UUIDv7), tenant, device, seq, ts, type, data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uuid6


def utc_ts(moment: datetime) -> str:
    """UTC, ISO 8601 with milliseconds and a Z, e.g. 2026-03-29T01:00:00.123Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def new_event_id() -> str:
    return str(uuid6.uuid7())


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    tenant: str
    device: str
    seq: int
    ts: str
    type: str
    data: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "tenant": self.tenant,
                "device": self.device,
                "seq": self.seq,
                "ts": self.ts,
                "type": self.type,
                "data": self.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> Event:
        return Event(
            id=str(raw["id"]),
            tenant=str(raw["tenant"]),
            device=str(raw["device"]),
            seq=int(raw["seq"]),
            ts=str(raw["ts"]),
            type=str(raw["type"]),
            data=dict(raw["data"]),
        )


# Reader conditions the agent reports (data: reader, active, detail). ``active`` true
# means the condition began (offline, tamper open, refused), false that it ended.
READER_OFFLINE = "device.reader_offline"
READER_TAMPER = "device.reader_tamper"
READER_REFUSED = "device.reader_refused"
