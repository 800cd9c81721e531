"""The quarantine: what the bridge refused for good, kept for an operator.

A message (or one event of a batch) that can never be stored is acknowledged so that it
does not block the device or the broker, and a copy goes here with the reason: the raw
bytes (bounded), tenant, device, the seq when known, when it came and how often. The
fleet page lists a tenant's rows; ``/metrics`` counts them (docs/security.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from cloud_bridge.db_schema import QUARANTINE_RAW_BYTES, events, quarantine, upsert


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused message or event. ``settles`` marks a refused event whose seq counts as
    done for the contiguous ack (the device may drop it: the bridge keeps the copy)."""

    tenant: str
    device: str
    kind: str
    reason: str
    raw: bytes
    seq: int | None = None
    event_id: str | None = None
    settles: bool = False

    def row(self, now_ms: int) -> dict[str, Any]:
        return {"tenant": self.tenant[:64], "device": self.device[:64], "kind": self.kind[:32],
                "seq": self.seq, "settles": self.settles and self.seq is not None,
                "event_id": self.event_id, "reason": self.reason[:2000],
                "raw": self.raw[:QUARANTINE_RAW_BYTES], "raw_size": len(self.raw),
                "digest": hashlib.sha256(self.raw).hexdigest(),
                "first_seen": now_ms, "last_seen": now_ms, "times": 1}


def record(conn: Connection, refusals: Sequence[Refusal]) -> None:
    """Keep the refusals; the same payload from the same device again only counts up."""
    if not refusals:
        return
    now = int(time.time() * 1000)
    # one row per key and statement (PostgreSQL refuses to update one row twice)
    unique = {(r["tenant"], r["device"], r["digest"]): r for r in (x.row(now) for x in refusals)}
    rows = [unique[k] for k in sorted(unique)]
    stmt = upsert(conn, quarantine, ["tenant", "device", "digest"], {
        "last_seen": lambda ex: ex.last_seen,
        "times": quarantine.c.times + 1,
    })
    conn.execute(stmt, rows)


def next_settled(conn: Connection, tenant: str, device: str, after: int) -> int | None:
    """The lowest settled seq above ``after`` of this device, if any."""
    value = conn.execute(select(func.min(quarantine.c.seq)).where(
        quarantine.c.tenant == tenant, quarantine.c.device == device,
        quarantine.c.seq > after, quarantine.c.settles.is_(True))).scalar()
    return None if value is None else int(value)


def recent(conn: Connection, tenant: str, limit: int = 50) -> list[dict[str, Any]]:
    """A tenant's newest quarantined items for the fleet page (raw bytes cut to a preview)."""
    rows = conn.execute(select(
        quarantine.c.id, quarantine.c.device, quarantine.c.kind, quarantine.c.seq,
        quarantine.c.event_id, quarantine.c.reason, quarantine.c.raw_size,
        quarantine.c.first_seen, quarantine.c.last_seen, quarantine.c.times,
        func.substr(quarantine.c.raw, 1, 200).label("preview"))
        .where(quarantine.c.tenant == tenant)
        .order_by(quarantine.c.last_seen.desc(), quarantine.c.id.desc()).limit(limit)).mappings()
    out = []
    for r in rows:
        item = dict(r)
        item["preview"] = bytes(r["preview"] or b"").decode("utf-8", "replace")
        out.append(item)
    return out


def count(conn: Connection, tenant: str | None = None) -> int:
    stmt = select(func.count()).select_from(quarantine)
    if tenant is not None:
        stmt = stmt.where(quarantine.c.tenant == tenant)
    return int(conn.execute(stmt).scalar() or 0)


def sweep_stored_poison(conn: Connection) -> int:
    """SQLite: events stored before the JSON index on ``data`` existed may hold what its
    JSON functions refuse (NaN, Infinity), and then that index cannot be built and every
    query looking into ``data`` fails. Move them to the quarantine, settled (their seqs
    were acknowledged long ago); returns how many."""
    rows = conn.exec_driver_sql(
        "SELECT tenant, device, seq, id, CAST(data AS BLOB) FROM events "
        "WHERE json_valid(data) = 0").all()
    if not rows:
        return 0
    record(conn, [Refusal(str(t), str(d), "events",
                          "stored before strict parsing; its data is not valid JSON",
                          bytes(raw), int(seq), str(ev_id), settles=True)
                  for t, d, seq, ev_id, raw in rows])
    keys = [(t, d, seq) for t, d, seq, _, _ in rows]
    for i in range(0, len(keys), 500):
        conn.execute(events.delete().where(
            tuple_(events.c.tenant, events.c.device, events.c.seq).in_(keys[i:i + 500])))
    return len(rows)
