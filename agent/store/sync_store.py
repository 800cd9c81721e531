"""The store's half of syncing: what sync/device_store.py asks for, on the agent's SQLite.

:class:`MembershipData` applies verified change batches and snapshot chunks (the SQL is
in agent/store/membership.py and agent/store/snapshot_staging.py); :class:`SyncStore`
adds the outbox feed, for the MQTT link's own connection. The protocol logic (signatures,
version order, gaps) stays in sync/membership_applier.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.store.local_store import Durability, LocalStore
from agent.store.membership import apply_changes
from agent.store.outbox import Outbox
from agent.store.snapshot_staging import SnapshotRows, SnapshotStaging, StagedSnapshot
from contracts.events import Event
from contracts.messages import ChangeBatch, SnapshotChunk


class MembershipData:
    """Membership data on one store connection (sync.device_store.MembershipStore)."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.staging = SnapshotStaging(store)

    def membership_version(self) -> int:
        return self.store.membership_version()

    def apply_change_batch(self, batch: ChangeBatch) -> int:
        with self.store.transaction() as conn:
            version = int(LocalStore.get_meta_in(conn, "membership_version", "0"))
            if batch.from_version == version:
                apply_changes(conn, batch.changes)
                LocalStore.set_meta(conn, "membership_version", str(batch.to_version))
        return version

    def stage_snapshot_chunk(self, chunk: SnapshotChunk) -> StagedSnapshot:
        return self.staging.stage(chunk.snapshot_id, chunk.version, chunk.chunk, chunk.chunks,
                                  snapshot_rows(chunk))

    def build_snapshot_indexes(self) -> int:
        return self.staging.build_indexes()

    def swap_in_snapshot(self) -> int | None:
        return self.staging.swap_in()

    def recover_snapshot(self) -> list[str]:
        return self.staging.recover()


class SyncStore(MembershipData):
    """The MQTT link's own connection: membership data and the outbox feed
    (sync.device_store.DeviceStore)."""

    def __init__(self, path: str | Path, durability: Durability, tenant: str,
                 device: str) -> None:
        super().__init__(LocalStore(path, durability))
        self.outbox = Outbox(self.store, tenant, device)

    def pending(self, after_seq: int = 0, limit: int = 200) -> Sequence[Event]:
        return self.outbox.pending(after_seq, limit)

    def ack(self, upto_seq: int) -> int:
        return self.outbox.ack(upto_seq)

    def acked_seq(self) -> int:
        return int(self.store.get_meta("acked_seq", "0") or 0)

    def last_seq(self) -> int:
        return self.outbox.last_seq()

    def depth(self) -> int:
        return self.outbox.depth()

    def close(self) -> None:
        self.store.close()


def snapshot_rows(chunk: SnapshotChunk) -> SnapshotRows:
    # The validated tuples go to SQLite as they are (positional parameters put them in
    # column order); only the rare entitlement with lists or maps needs a Python touch.
    # At a million rows, any per-row Python work shows in the snapshot time.
    return SnapshotRows(
        # a member row without its fifth item (waiver version unknown) gets NULL there
        members=[row if len(row) == 5 else (*row, None) for row in chunk.members],
        credentials=chunk.credentials,
        entitlements=[row if row[7] is None and not row[8] and not row[12]
                      else _entitlement_text(row) for row in chunk.entitlements],
        pins=chunk.pins, tickets=chunk.tickets)


def _entitlement_text(row: tuple[Any, ...]) -> tuple[Any, ...]:
    zones, windows, used = row[7], row[8], row[12]
    return (
        *row[:7],
        json.dumps(zones, separators=(",", ":")) if zones is not None else None,
        json.dumps([w.model_dump() for w in windows], separators=(",", ":")) if windows
        else None,
        *row[9:12],
        json.dumps(used, sort_keys=True) if used else None,
    )
