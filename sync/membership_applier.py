"""Applies signed membership data to the agent's store: change batches in version order,
snapshots by building shadow tables in short transactions and swapping them in at once,
so taps keep being decided (against the old data) while a large snapshot arrives."""

from __future__ import annotations

import enum
import json
import logging
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from agent.errors import BadInput, SignatureError
from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes, set_pin
from sync.messages import SIGNED_PAYLOAD, ChangeBatch, SnapshotChunk
from sync.signed_envelope import verify_envelope

log = logging.getLogger(__name__)

MEMBERSHIP_TABLES = ("members", "credentials", "entitlements")


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

    def _snapshot_chunk(self, chunk: SnapshotChunk) -> ApplyResult:
        if chunk.chunk >= chunk.chunks:
            raise BadInput(f"chunk {chunk.chunk} of {chunk.chunks}")
        current = self.store.membership_version()
        if chunk.version < current:
            return ApplyResult(Outcome.OLD, current, "snapshot older than local data")
        with self.store.transaction() as conn:
            staged = conn.execute("SELECT DISTINCT snapshot_id FROM snapshot_staging").fetchall()
            if staged and staged[0][0] != chunk.snapshot_id:
                # a newer snapshot replaces one that never completed
                conn.execute("DELETE FROM snapshot_staging")
                staged = []
            if not staged:
                _create_shadow_tables(conn)
            seen = conn.execute(
                "SELECT 1 FROM snapshot_staging WHERE snapshot_id = ? AND chunk = ?",
                (chunk.snapshot_id, chunk.chunk)).fetchone()
            if seen is None:
                _insert_shadow(conn, chunk)
                conn.execute(
                    "INSERT INTO snapshot_staging(snapshot_id, chunk, changes) VALUES (?, ?, '')",
                    (chunk.snapshot_id, chunk.chunk))
            have = conn.execute("SELECT COUNT(*) FROM snapshot_staging WHERE snapshot_id = ?",
                                (chunk.snapshot_id,)).fetchone()[0]
        if have < chunk.chunks:
            return ApplyResult(Outcome.STAGED, current, f"{have}/{chunk.chunks} chunks")
        self._swap_in(chunk.version)
        self.on_applied()
        log.info("membership snapshot applied: version %d (%d chunks)", chunk.version,
                 chunk.chunks)
        return ApplyResult(Outcome.APPLIED, chunk.version)

    def _swap_in(self, version: int) -> None:
        # one index per transaction: each holds the write lock for about a second at
        # 1,000,000 rows, and taps get their turn in between
        with self.store.transaction() as conn:
            generation = int(LocalStore.get_meta_in(conn, "snapshot_generation", "0")) + 1
            statements = _shadow_index_statements(conn, generation)
            LocalStore.set_meta(conn, "snapshot_generation", str(generation))
        try:
            for sql in statements:
                with self.store.transaction() as conn:
                    conn.execute(sql)
        except sqlite3.IntegrityError as exc:
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM snapshot_staging")
                for table in MEMBERSHIP_TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS snap_{table}")
            raise BadInput(f"snapshot has duplicate keys ({exc}); discarded") from None
        with self.store.transaction() as conn:
            for table in MEMBERSHIP_TABLES:
                conn.execute(f"DROP TABLE {table}")
                conn.execute(f"ALTER TABLE snap_{table} RENAME TO {table}")
            # local facts of people who are still members survive a snapshot
            conn.execute("DELETE FROM entry_counters WHERE entitlement_id NOT IN "
                         "(SELECT id FROM entitlements)")
            conn.execute("DELETE FROM presence WHERE member_id NOT IN (SELECT id FROM members)")
            conn.execute("DELETE FROM employee_pins WHERE member_id NOT IN "
                         "(SELECT id FROM members)")
            conn.execute("DELETE FROM snapshot_staging")
            LocalStore.set_meta(conn, "membership_version", str(version))


def _create_shadow_tables(conn: sqlite3.Connection) -> None:
    for table in MEMBERSHIP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS snap_{table}")
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (table,)).fetchone()[0]
        # clone the live table's definition, whatever migrations made of it
        conn.execute(re.sub(rf"^CREATE TABLE \[?\"?{table}\]?\"?",
                            f"CREATE TABLE snap_{table}", sql, count=1))


def _shadow_index_statements(conn: sqlite3.Connection, generation: int) -> list[str]:
    """CREATE INDEX statements that give the shadow tables the live tables' indexes."""
    out = []
    for table in MEMBERSHIP_TABLES:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL", (table,)).fetchall()
        for name, sql in rows:
            base = re.sub(r"__g\d+$", "", name)
            new_sql = sql.replace(f"[{name}]", f"[{base}__g{generation}]", 1).replace(
                f'"{name}"', f'"{base}__g{generation}"', 1)
            new_sql = re.sub(rf"ON \[?\"?{table}\]?\"?", f"ON snap_{table}", new_sql, count=1)
            out.append(new_sql)
    return out


def _insert_shadow(conn: sqlite3.Connection, chunk: SnapshotChunk) -> None:
    # The validated tuples go to SQLite as they are (positional parameters put them in
    # column order); only the rare entitlement with lists or maps needs a Python touch.
    # At a million rows, any per-row Python work shows in the snapshot time.
    conn.executemany("INSERT INTO snap_members(id, first_name, waiver_signed_on, blocked) "
                     "VALUES (?,?,?,?)", chunk.members)
    conn.executemany(
        "INSERT INTO snap_credentials(hash, id, member_id, kind, blocked) "
        "VALUES (coalesce(?4, 'id:' || ?1), ?1, ?2, ?3, ?5)", chunk.credentials)
    conn.executemany(
        "INSERT INTO snap_entitlements(id, member_id, kind, valid_from, valid_to, valid_on, "
        "entries_total, zones, windows, frozen_from, frozen_to, credential_id, used_remote) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [row if row[7] is None and not row[8] and not row[12] else _entitlement_text(row)
         for row in chunk.entitlements])
    for member_id, pin_hash in chunk.pins:
        set_pin(conn, member_id, pin_hash)


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
