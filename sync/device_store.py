"""What the device link needs from the device's store, as typed interfaces.

``sync`` decides (signatures, version order, gaps, when to resend); the store keeps the
data. The agent's store implements these (agent/store/sync_store.py) with the SQL kept
in agent/store/; nothing here knows a table or a connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.events import Event
from contracts.messages import ChangeBatch, SnapshotChunk


class OutboxFeed(Protocol):
    """The outbox as the link pushes it up: events after a seq, acks, depth."""

    def pending(self, after_seq: int = 0, limit: int = 200) -> Sequence[Event]: ...

    def ack(self, upto_seq: int) -> int:
        """Drop events up to ``upto_seq`` (the bridge committed them); how many went."""
        ...

    def acked_seq(self) -> int: ...

    def last_seq(self) -> int: ...

    def depth(self) -> int: ...


class StagedSnapshotView(Protocol):
    """Where a staged snapshot stands after a chunk."""

    @property
    def snapshot_id(self) -> str: ...

    @property
    def chunks(self) -> int: ...

    @property
    def have(self) -> int: ...

    @property
    def complete(self) -> bool: ...


class MembershipStore(Protocol):
    """Membership data on the device: versioned, changed only by whole verified batches
    or whole snapshots."""

    def membership_version(self) -> int: ...

    def apply_change_batch(self, batch: ChangeBatch) -> int:
        """In one transaction: if the local version is ``batch.from_version``, apply the
        changes and set ``batch.to_version``. Returns the version found before (equal to
        ``batch.from_version`` exactly when the batch was applied)."""
        ...

    def stage_snapshot_chunk(self, chunk: SnapshotChunk) -> StagedSnapshotView:
        """Stage one chunk (idempotent); a chunk of an older snapshot than the staged one
        is not staged (the answer then names the staged one)."""
        ...

    def build_snapshot_indexes(self) -> int: ...

    def swap_in_snapshot(self) -> int | None:
        """Swap the complete staged snapshot in; its version, or None when the live data
        is already as new (the staging is dropped)."""
        ...

    def recover_snapshot(self) -> list[str]:
        """At start: finish or drop what a kill left; what was done, for the log."""
        ...


class DeviceStore(OutboxFeed, MembershipStore, Protocol):
    """The link's own connection to the device's store."""

    def close(self) -> None: ...
