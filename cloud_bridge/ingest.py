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
id is unique per tenant (index ``ux_events_tenant_id``; ``ux_event_keys_tenant_id`` on
PostgreSQL): the same id under another seq makes the statement fail, and the caller
retries without it (cloud_bridge/service.py).

On PostgreSQL ``events`` is partitioned by month and the keys above live in the ledger
``event_keys`` written in the same transaction (cloud_bridge/partitions.py); an event
older than the retention horizon is refused into the quarantine with the reason.

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
    entitlement_uses,
    entitlements,
    insert_ignore,
    is_sqlite,
    write_tx,
)
from cloud_bridge.partitions import PartitionKeeper, horizon, store_events
from cloud_bridge.quarantine import Refusal
from cloud_bridge.records import entitlement_record
from cloud_bridge.tickets.ingest import record_ticket_events
from cloud_bridge.tickets.schema import ensure_ticket_schema
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


def _event_row(ev: EventIn, now: int) -> dict[str, Any]:
    return {"tenant": ev.tenant, "device": ev.device, "seq": ev.seq, "id": ev.id,
            "ts": ev.ts, "type": ev.type, "data": ev.data, "received_at": now}


def _use_row(ev: EventIn) -> dict[str, Any] | None:
    delta = entitlement_delta(ev)
    if delta is None:
        return None
    return {"tenant": ev.tenant, "device": ev.device, "seq": ev.seq,
            "entitlement": delta[0], "delta": delta[1]}


class Ingestor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        # PostgreSQL: events are partitioned by month (cloud_bridge/partitions.py)
        self.keeper = None if self.sqlite else PartitionKeeper(engine)
        ensure_ticket_schema(engine)  # ticket.* events feed the ticket ledger

    def ingest(self, batches: Sequence[EventBatch],
               refusals: Sequence[Refusal] = ()) -> IngestResult:
        evs = sorted((ev for batch in batches for ev in batch.events),
                     key=lambda e: (e.tenant, e.device, e.seq))
        if not evs and not refusals:
            return IngestResult({})
        refused = list(refusals)
        with write_tx(self.engine) as conn:
            if evs and self.keeper is not None:
                evs, expired = self._before_horizon(conn, evs)
                refused += expired
            now = int(time.time() * 1000)
            rows = [_event_row(ev, now) for ev in evs]
            uses = [u for u in map(_use_row, evs) if u is not None]
            keys = sorted({(r["tenant"], r["device"]) for r in rows}
                          | {(r.tenant, r.device) for r in refused if r.settles})
            created: set[str] = set()
            if rows:  # a duplicate (tenant, device, seq) is ignored; a reused id is not
                created = store_events(conn, rows, self.keeper)
            quarantine.record(conn, refused)
            entries: list[Entry] = []
            if uses:
                conn.execute(insert_ignore(conn, entitlement_uses), uses)
                entries = self._update_used(conn, uses)
            entries += self._ticket_entries(conn, evs, now)
            if self.sqlite:
                acks = {k: cursor.advance(conn, *k) for k in keys}
        if self.keeper is not None and created:
            self.keeper.committed(created)
        if not self.sqlite:
            acks = self.advance(keys)
        return IngestResult(acks, entries, len(rows), refused)

    def _before_horizon(self, conn: Connection, evs: list[EventIn]
                        ) -> tuple[list[EventIn], list[Refusal]]:
        """Events older than the retention horizon are refused with a reason: their month
        was dropped, so storing them again would resurrect a fraction of it."""
        cut = horizon(conn)
        if cut is None:
            return evs, []
        keep = [ev for ev in evs if ev.ts >= cut]
        expired = [Refusal(ev.tenant, ev.device, "events",
                           f"older than the retention horizon {cut} (events before it were "
                           "deleted; docs/scale.md)", ev.model_dump_json().encode(),
                           ev.seq, ev.id, settles=True)
                   for ev in evs if ev.ts < cut]
        return keep, expired

    def advance(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        with write_tx(self.engine) as conn:
            return {k: cursor.advance(conn, *k) for k in keys}

    def _ticket_entries(self, conn: Connection, evs: list[EventIn], now: int) -> list[Entry]:
        """Ticket events into the ticket ledger (cloud_bridge/tickets/ingest.py)."""
        records = record_ticket_events(conn, evs, now)
        return [change_log.append(conn, tenant, records[tenant]) for tenant in sorted(records)]

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
