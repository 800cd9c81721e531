"""Stores validated event batches exactly once and works out the acks.

Several messages go into one transaction (rows sorted by tenant, device, seq so that
concurrent bridges take row locks in one order). Each (tenant, device, seq) is stored
once: ``INSERT … ON CONFLICT DO NOTHING`` makes duplicate deliveries harmless. Entries
consumed at gates (``access.decision`` with ``consumed``) and given back
(``access.passage_missed`` with ``refunded``) are recorded per event as well, summed
into the entitlement's ``used_by_device`` and published as an entitlement upsert, so the
other devices of the tenant count them too.

Events refused for good (cloud_bridge/quarantine.py) are recorded in the same transaction,
so their seqs count for the ack together with the events stored beside them. An event
id is unique per tenant (index ``ux_events_tenant_id``): the same id under another seq
makes the statement fail, and the caller retries without it (cloud_bridge/service.py).

The ack is computed only from committed rows: on SQLite inside the same write
transaction (one writer at a time, so it sees everything committed); on PostgreSQL in a
transaction after the commit, because concurrent writers cannot see each other before.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from cloud_bridge import change_log, cursor, quarantine
from cloud_bridge.change_log import Entry
from cloud_bridge.db_schema import (
    dialect_insert,
    entitlement_uses,
    entitlements,
    events,
    insert_ignore,
    is_sqlite,
    write_tx,
)
from cloud_bridge.quarantine import Refusal
from cloud_bridge.records import entitlement_record
from cloud_bridge.wire import EventBatch, EventIn


@dataclass(frozen=True, slots=True)
class IngestResult:
    acks: dict[tuple[str, str], int]  # (tenant, device) -> acked_seq, after commit
    entries: list[Entry] = field(default_factory=list)  # change-log entries to publish
    events: int = 0
    refused: list[Refusal] = field(default_factory=list)  # quarantined in the same commit


def entitlement_delta(ev: EventIn) -> tuple[str, int] | None:
    """(entitlement id, +1/-1) when the event consumed or refunded an entry."""
    data = ev.data
    ent = data.get("entitlement")
    if not isinstance(ent, str) or not 0 < len(ent) <= 64:
        return None
    if ev.type == "access.decision" and data.get("consumed") is True:
        return ent, 1
    if ev.type == "access.passage_missed" and data.get("refunded") is True:
        return ent, -1
    return None


class Ingestor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)

    def ingest(self, batches: Sequence[EventBatch],
               refusals: Sequence[Refusal] = ()) -> IngestResult:
        now = int(time.time() * 1000)
        rows: list[dict[str, Any]] = []
        uses: list[dict[str, Any]] = []
        for batch in batches:
            for ev in batch.events:
                rows.append({"tenant": ev.tenant, "device": ev.device, "seq": ev.seq,
                             "id": ev.id, "ts": ev.ts, "type": ev.type, "data": ev.data,
                             "received_at": now})
                delta = entitlement_delta(ev)
                if delta is not None:
                    uses.append({"tenant": ev.tenant, "device": ev.device, "seq": ev.seq,
                                 "entitlement": delta[0], "delta": delta[1]})
        if not rows and not refusals:
            return IngestResult({})
        rows.sort(key=lambda r: (r["tenant"], r["device"], r["seq"]))
        keys = sorted({(r["tenant"], r["device"]) for r in rows}
                      | {(r.tenant, r.device) for r in refusals if r.settles})
        with write_tx(self.engine) as conn:
            if rows:  # a duplicate (tenant, device, seq) is ignored; a reused id is not
                conn.execute(dialect_insert(conn, events).on_conflict_do_nothing(
                    index_elements=["tenant", "device", "seq"]), rows)
            quarantine.record(conn, refusals)
            entries: list[Entry] = []
            if uses:
                uses.sort(key=lambda r: (r["tenant"], r["device"], r["seq"]))
                conn.execute(insert_ignore(conn, entitlement_uses), uses)
                entries = self._update_used(conn, uses)
            if self.sqlite:
                acks = {k: cursor.advance(conn, *k) for k in keys}
        if not self.sqlite:
            acks = self.advance(keys)
        return IngestResult(acks, entries, len(rows), list(refusals))

    def advance(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        with write_tx(self.engine) as conn:
            return {k: cursor.advance(conn, *k) for k in keys}

    def _update_used(self, conn: Connection, uses: list[dict[str, Any]]) -> list[Entry]:
        touched = sorted({(u["tenant"], u["entitlement"]) for u in uses})
        records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tenant, ent_id in touched:
            row = conn.execute(
                select(entitlements).where(entitlements.c.tenant == tenant,
                                           entitlements.c.id == ent_id)
                .with_for_update()).mappings().first()
            if row is None:
                continue  # deleted in the cloud meanwhile: the uses stay recorded
            sums = conn.execute(
                select(entitlement_uses.c.device, func.sum(entitlement_uses.c.delta))
                .where(entitlement_uses.c.tenant == tenant,
                       entitlement_uses.c.entitlement == ent_id)
                .group_by(entitlement_uses.c.device)).all()
            used = {str(dev): int(total) for dev, total in sums if int(total) > 0}
            if used == (row["used_by_device"] or {}):
                continue  # a duplicate delivery: nothing new to tell the devices
            conn.execute(update(entitlements).where(
                entitlements.c.tenant == tenant, entitlements.c.id == ent_id)
                .values(used_by_device=used))
            records[tenant].append(entitlement_record({**row, "used_by_device": used}))
        # tenant rows last and in order: see cloud_bridge.change_log
        return [change_log.append(conn, tenant, records[tenant]) for tenant in sorted(records)]
