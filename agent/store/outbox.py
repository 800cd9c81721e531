"""The durable event outbox: gapless per-device seq, written in the caller's transaction.

An event leaves only when the bridge acknowledges that everything up to a seq is
committed on its side (``ack``); until then it is re-sent after any restart.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.store.local_store import LocalStore
from contracts.events import Event, new_event_id, utc_ts


class Outbox:
    def __init__(self, store: LocalStore, tenant: str, device: str) -> None:
        self.store = store
        self.tenant = tenant
        self.device = device

    def append(
        self,
        conn: sqlite3.Connection,
        event_type: str,
        data: dict[str, Any],
        at: datetime,
        seal: Callable[[int, str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Event:
        """Add one event inside the caller's open transaction (BEGIN IMMEDIATE).

        ``seal(seq, ts, data)`` may return the final data once seq and ts are known (the
        punch chain hashes them)."""
        # the counter lives in meta, not MAX(seq), so seq stays gapless after acked
        # events are pruned; one statement both bumps and reads it
        seq = int(conn.execute(
            "INSERT INTO meta(key, value) VALUES ('last_seq', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value"
        ).fetchone()[0])
        ts = utc_ts(at)
        if seal is not None:
            data = seal(seq, ts, data)
        event = Event(
            id=new_event_id(),
            tenant=self.tenant,
            device=self.device,
            seq=seq,
            ts=ts,
            type=event_type,
            data=data,
        )
        conn.execute(
            "INSERT INTO outbox(seq, id, type, ts, data, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (
                seq,
                event.id,
                event_type,
                event.ts,
                json.dumps(data, separators=(",", ":"), sort_keys=True),
                int(time.time() * 1000),
            ),
        )
        return event

    def pending(self, after_seq: int = 0, limit: int = 200) -> list[Event]:
        rows = self.store.conn.execute(
            "SELECT seq, id, type, ts, data FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            Event(
                id=r[1], tenant=self.tenant, device=self.device, seq=r[0], ts=r[3], type=r[2],
                data=json.loads(r[4]),
            )
            for r in rows
        ]

    def ack(self, upto_seq: int) -> int:
        """Drop events the bridge has committed; returns how many were removed."""
        with self.store.transaction() as conn:
            cur = conn.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))
            acked = int(self.store.get_meta("acked_seq", "0") or 0)
            if upto_seq > acked:
                LocalStore.set_meta(conn, "acked_seq", str(upto_seq))
            return cur.rowcount

    def depth(self) -> int:
        return int(self.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_age_s(self) -> float | None:
        row = self.store.conn.execute("SELECT MIN(created_ms) FROM outbox").fetchone()
        return None if row[0] is None else max(time.time() - row[0] / 1000, 0.0)

    def last_seq(self) -> int:
        return int(self.store.get_meta("last_seq", "0") or 0)
