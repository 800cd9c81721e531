"""Applies signed membership data to the agent's store: change batches in version order,
snapshots by building shadow tables in short transactions and swapping them in at once,
so taps keep being decided (against the old data) while a large snapshot arrives. The
snapshot SQL, restartable after a kill at any instruction, is in
agent/store/snapshot_staging.py."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes
from agent.store.snapshot_staging import SnapshotRows, SnapshotStaging
from contracts.errors import BadInput, SignatureError
from contracts.messages import SIGNED_PAYLOAD, ChangeBatch, SnapshotChunk
from contracts.signed_envelope import verify_envelope

log = logging.getLogger(__name__)

class Outcome(enum.StrEnum):
    APPLIED = "applied"
    OLD = "old"  # already have it (replayed or duplicate)
    GAP = "gap"  # something is missing before it: ask for it
    STAGED = "staged"  # a snapshot chunk waiting for the rest
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Outcome
    version: int
    detail: str = ""


class MembershipApplier:
    def __init__(self, store: LocalStore, tenant: str, public_key: Ed25519PublicKey | None,
                 on_applied: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.tenant = tenant
        self.public_key = public_key
        self.on_applied = on_applied
        self.rejected = 0
        self.staging = SnapshotStaging(store)

    def handle(self, message: bytes) -> ApplyResult:
        version = self.store.membership_version()
        if self.public_key is None:
            return self._reject(version, "no keys.tenant_public_key configured: cannot verify")
        try:
            payload = SIGNED_PAYLOAD.validate_json(verify_envelope(message, self.public_key))
            if payload.tenant != self.tenant:
                raise BadInput(f"batch is for tenant {payload.tenant!r}")
            if isinstance(payload, SnapshotChunk):
                return self._snapshot_chunk(payload)
            return self._batch(payload)
        except SignatureError as exc:
            return self._reject(version, f"signature: {exc}")
        except (BadInput, ValidationError, ValueError) as exc:
            return self._reject(version, f"malformed: {str(exc).splitlines()[0][:200]}")

    def _reject(self, version: int, detail: str) -> ApplyResult:
        self.rejected += 1
        log.warning("membership data rejected: %s", detail)
        return ApplyResult(Outcome.REJECTED, version, detail)

    def _batch(self, batch: ChangeBatch) -> ApplyResult:
        if batch.to_version <= batch.from_version:
            raise BadInput("to_version must be above from_version")
        changes = batch.changes
        with self.store.transaction() as conn:
            version = int(LocalStore.get_meta_in(conn, "membership_version", "0"))
            if batch.to_version <= version:
                log.info("membership batch %d..%d ignored: already at %d",
                         batch.from_version, batch.to_version, version)
                return ApplyResult(Outcome.OLD, version)
            if batch.from_version != version:
                return ApplyResult(Outcome.GAP, version,
                                   f"have {version}, batch starts at {batch.from_version}")
            apply_changes(conn, changes)
            LocalStore.set_meta(conn, "membership_version", str(batch.to_version))
        self.on_applied()
        log.info("membership version %d -> %d (%d changes)", version, batch.to_version,
                 len(changes))
        return ApplyResult(Outcome.APPLIED, batch.to_version)

    # -- snapshots -------------------------------------------------------------------

    def recover(self) -> None:
        """At start: finish or drop what a kill left of a snapshot apply."""
        done = self.staging.recover()
        if done:
            log.info("membership snapshot staging at start: %s", "; ".join(done))
            self.on_applied()

    def _snapshot_chunk(self, chunk: SnapshotChunk) -> ApplyResult:
        if chunk.chunk >= chunk.chunks:
            raise BadInput(f"chunk {chunk.chunk} of {chunk.chunks}")
        current = self.store.membership_version()
        if chunk.version <= current:
            # already there (a chunk redelivered after the swap, or an answer to a request
            # made before it); an equal version holds the very same data
            return ApplyResult(Outcome.OLD, current, "snapshot not newer than local data")
        staged = self.staging.stage(chunk.snapshot_id, chunk.version, chunk.chunk,
                                    chunk.chunks, _rows(chunk))
        if staged.snapshot_id != chunk.snapshot_id:
            return ApplyResult(Outcome.OLD, current, "older than the snapshot being staged")
        if not staged.complete:
            return ApplyResult(Outcome.STAGED, current, f"{staged.have}/{staged.chunks} chunks")
        self.staging.build_indexes()
        version = self.staging.swap_in()
        if version is None:
            return ApplyResult(Outcome.OLD, self.store.membership_version(),
                               "local data moved past the snapshot while it was staged")
        self.on_applied()
        log.info("membership snapshot applied: version %d (%d chunks)", version, chunk.chunks)
        return ApplyResult(Outcome.APPLIED, version)


def _rows(chunk: SnapshotChunk) -> SnapshotRows:
    # The validated tuples go to SQLite as they are (positional parameters put them in
    # column order); only the rare entitlement with lists or maps needs a Python touch.
    # At a million rows, any per-row Python work shows in the snapshot time.
    return SnapshotRows(
        members=chunk.members, credentials=chunk.credentials,
        entitlements=[row if row[7] is None and not row[8] and not row[12]
                      else _entitlement_text(row) for row in chunk.entitlements],
        pins=chunk.pins)


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
