"""Applies signed membership data to the device's store: change batches in version order,
snapshots by building shadow tables in short transactions and swapping them in at once,
so taps keep being decided (against the old data) while a large snapshot arrives.

This is the protocol half (verify, order, gap -> ask); the data half is behind
sync/device_store.py's MembershipStore, which the agent's store implements (the snapshot
SQL, restartable after a kill at any instruction, is in agent/store/snapshot_staging.py)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from contracts.errors import BadInput, SignatureError
from contracts.messages import SIGNED_PAYLOAD, ChangeBatch, SnapshotChunk
from contracts.signed_envelope import verify_envelope
from sync.device_store import MembershipStore

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
    def __init__(self, store: MembershipStore, tenant: str, public_key: Ed25519PublicKey | None,
                 on_applied: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.tenant = tenant
        self.public_key = public_key
        self.on_applied = on_applied
        self.rejected = 0

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
        # the store applies it only at exactly from_version, in one transaction with the
        # check; what it found decides the answer
        version = self.store.apply_change_batch(batch)
        if batch.to_version <= version:
            log.info("membership batch %d..%d ignored: already at %d",
                     batch.from_version, batch.to_version, version)
            return ApplyResult(Outcome.OLD, version)
        if batch.from_version != version:
            return ApplyResult(Outcome.GAP, version,
                               f"have {version}, batch starts at {batch.from_version}")
        self.on_applied()
        log.info("membership version %d -> %d (%d changes)", version, batch.to_version,
                 len(batch.changes))
        return ApplyResult(Outcome.APPLIED, batch.to_version)

    # -- snapshots -------------------------------------------------------------------

    def recover(self) -> None:
        """At start: finish or drop what a kill left of a snapshot apply."""
        done = self.store.recover_snapshot()
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
        staged = self.store.stage_snapshot_chunk(chunk)
        if staged.snapshot_id != chunk.snapshot_id:
            return ApplyResult(Outcome.OLD, current, "older than the snapshot being staged")
        if not staged.complete:
            return ApplyResult(Outcome.STAGED, current, f"{staged.have}/{staged.chunks} chunks")
        self.store.build_snapshot_indexes()
        version = self.store.swap_in_snapshot()
        if version is None:
            return ApplyResult(Outcome.OLD, self.store.membership_version(),
                               "local data moved past the snapshot while it was staged")
        self.on_applied()
        log.info("membership snapshot applied: version %d (%d chunks)", version, chunk.chunks)
        return ApplyResult(Outcome.APPLIED, version)

