"""The contiguous ack: the highest seq such that every seq 1..seq of a device is committed.

Computed from what is committed, never from what one message carried, so two bridge
processes that committed neighbouring batches of one device still ack correctly: the
one that computes last sees both commits. The stored cursor only ever moves forward.
A seq whose event was refused for good and quarantined (cloud_bridge/quarantine.py,
``settles``) counts as done: the bridge keeps the copy, so the device may let it go.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, select

from cloud_bridge.db_schema import device_cursor, events, greatest, upsert
from cloud_bridge.quarantine import next_settled

_WALK = 10_000


def _stored(conn: Connection, tenant: str, device: str) -> int:
    value = conn.execute(select(device_cursor.c.acked_seq).where(
        device_cursor.c.tenant == tenant, device_cursor.c.device == device)).scalar()
    return int(value or 0)


def contiguous_from(conn: Connection, tenant: str, device: str, start: int) -> int:
    """Highest seq reachable from ``start`` (already known contiguous) without a gap."""
    key = (events.c.tenant == tenant, events.c.device == device)
    count, top = conn.execute(select(func.count(), func.max(events.c.seq))
                              .where(*key, events.c.seq > start)).one()
    if not count:
        return start
    if int(top) - start == int(count):
        return int(top)  # no gap above start: the usual case
    acked = start
    while True:  # a gap somewhere: walk the stored seqs in order up to it
        seqs = conn.execute(select(events.c.seq).where(*key, events.c.seq > acked)
                            .order_by(events.c.seq).limit(_WALK)).scalars().all()
        for seq in seqs:
            if seq != acked + 1:
                return acked
            acked = seq
        if len(seqs) < _WALK:
            return acked


def advance(conn: Connection, tenant: str, device: str) -> int:
    """Move the device's cursor as far as the committed events allow; returns it."""
    start = _stored(conn, tenant, device)
    acked = contiguous_from(conn, tenant, device, start)
    while next_settled(conn, tenant, device, acked) == acked + 1:
        acked = contiguous_from(conn, tenant, device, acked + 1)
    if acked != start:
        stmt = upsert(conn, device_cursor, ["tenant", "device"], {
            "acked_seq": lambda ex: greatest(conn, device_cursor.c.acked_seq, ex.acked_seq),
            "updated_at": lambda ex: ex.updated_at,
        })
        conn.execute(stmt.values(tenant=tenant, device=device, acked_seq=acked,
                                 updated_at=int(time.time() * 1000)))
    return acked


def acked_seq(conn: Connection, tenant: str, device: str) -> int:
    return _stored(conn, tenant, device)
