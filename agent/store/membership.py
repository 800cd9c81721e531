"""Membership data on the device: validated change records, applied atomically.

The same change format is used by signed change batches from the bridge, snapshots
and the simulator's synthetic loads. Only keyed hashes of UIDs are accepted from the
network; clear UIDs are hashed here and dropped (simulator/demo loads only).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agent.store.tickets import apply_mark
from contracts.credential_format import normalise_uid
from contracts.credential_hash import credential_hash
from contracts.membership_changes import (
    ChangeRecord,
    CredentialUpsert,
    Delete,
    EntitlementUpsert,
    EntityId,
    MemberUpsert,
    TicketMark,
)

# Rows in the column order of the bulk INSERTs below (also built by the benchmarks).
MemberRow = tuple[str, str, str | None, int]  # id, first_name, waiver_signed_on, blocked
CredentialRow = tuple[str, str, str, str, int]  # hash, id, member_id, kind, blocked
# id, member_id, kind, valid_from, valid_to, valid_on, entries_total, zones, windows,
# frozen_from, frozen_to, credential_id, used_remote
EntitlementRow = tuple[str, str, str, int | None, int | None, str | None, int | None,
                       str | None, str | None, int | None, int | None, str | None, str | None]


def apply_changes(conn: sqlite3.Connection, changes: Sequence[ChangeRecord]) -> None:
    """Apply inside the caller's transaction, in order."""
    for ch in changes:
        if isinstance(ch, MemberUpsert):
            conn.execute(
                "INSERT INTO members(id, first_name, waiver_signed_on, blocked, waiver_version) "
                "VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET first_name=excluded.first_name, "
                "waiver_signed_on=excluded.waiver_signed_on, blocked=excluded.blocked, "
                "waiver_version=excluded.waiver_version",
                (ch.id, ch.first_name,
                 ch.waiver_signed_on.isoformat() if ch.waiver_signed_on else None, int(ch.blocked),
                 ch.waiver_version),
            )
            set_pin(conn, ch.id, ch.pin_hash)
        elif isinstance(ch, CredentialUpsert):
            # the id is the stable key; a re-issued card gets a new hash under the same id
            conn.execute("DELETE FROM credentials WHERE id = ?", (ch.id,))
            conn.execute(
                "INSERT OR REPLACE INTO credentials(hash, id, member_id, kind, blocked) "
                "VALUES (?,?,?,?,?)",
                # signed-QR credentials have no hash: key them by a marked id instead, which
                # can never equal 64 hex digits
                (ch.hash or f"id:{ch.id}", ch.id,
                 ch.member_id,
                 ch.kind, int(ch.blocked)),
            )
        elif isinstance(ch, EntitlementUpsert):
            conn.execute(
                "INSERT OR REPLACE INTO entitlements(id, member_id, kind, valid_from, valid_to, "
                "valid_on, entries_total, zones, windows, frozen_from, frozen_to, credential_id, "
                "used_remote) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                entitlement_row(ch),
            )
        elif isinstance(ch, TicketMark):
            apply_mark(conn, ch)
        elif isinstance(ch, Delete):
            _delete(conn, ch.entity, ch.id)


def entitlement_row(ch: EntitlementUpsert) -> EntitlementRow:
    return (
        ch.id, ch.member_id, ch.kind, ch.valid_from, ch.valid_to,
        ch.valid_on.isoformat() if ch.valid_on else None, ch.entries_total,
        json.dumps(ch.zones, separators=(",", ":")) if ch.zones is not None else None,
        json.dumps([w.model_dump() for w in ch.windows], separators=(",", ":"))
        if ch.windows else None,
        ch.frozen_from, ch.frozen_to, ch.credential_id,
        json.dumps(ch.used_by_device, sort_keys=True) if ch.used_by_device else None,
    )


def set_pin(conn: sqlite3.Connection, member_id: str, pin_hash: str | None) -> None:
    if pin_hash is None:
        conn.execute("DELETE FROM employee_pins WHERE member_id = ?", (member_id,))
        return
    # a new PIN also clears a lockout: the office has just handed it out
    conn.execute(
        "INSERT INTO employee_pins(member_id, pin_hash, failures) VALUES (?, ?, 0) "
        "ON CONFLICT(member_id) DO UPDATE SET pin_hash = excluded.pin_hash, failures = 0, "
        "locked_until_ms = NULL WHERE pin_hash != excluded.pin_hash",
        (member_id, pin_hash))


def _delete(conn: sqlite3.Connection, entity: str, entity_id: str) -> None:
    if entity == "member":
        # erasure: nothing of the person may stay on the device
        ent_ids = [r[0] for r in conn.execute(
            "SELECT id FROM entitlements WHERE member_id = ?", (entity_id,))]
        conn.executemany("DELETE FROM entry_counters WHERE entitlement_id = ?",
                         [(e,) for e in ent_ids])
        conn.execute("DELETE FROM entitlements WHERE member_id = ?", (entity_id,))
        conn.execute("DELETE FROM credentials WHERE member_id = ?", (entity_id,))
        conn.execute("DELETE FROM presence WHERE member_id = ?", (entity_id,))
        conn.execute("DELETE FROM employee_pins WHERE member_id = ?", (entity_id,))
        conn.execute("DELETE FROM punch_state WHERE member_id = ?", (entity_id,))
        conn.execute("DELETE FROM members WHERE id = ?", (entity_id,))
    elif entity == "credential":
        conn.execute("DELETE FROM credentials WHERE id = ?", (entity_id,))
    else:
        conn.execute("DELETE FROM entry_counters WHERE entitlement_id = ?", (entity_id,))
        conn.execute("DELETE FROM entitlements WHERE id = ?", (entity_id,))


class SyntheticMember(BaseModel):
    """A demo/simulator member with a clear UID, hashed on arrival and never stored clear."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: EntityId
    first_name: Annotated[str, Field(max_length=40)]
    uid: Annotated[str, Field(max_length=64)] | None = None
    code: Annotated[str, Field(max_length=256)] | None = None
    waiver_signed_on: date | None = None
    entitlement: EntitlementUpsert | None = None


def synthetic_changes(
    key: bytes, members: Iterable[SyntheticMember]
) -> tuple[list[MemberRow], list[CredentialRow], list[EntitlementRow]]:
    """Rows for bulk insert: (members, credentials, entitlements)."""
    mrows: list[MemberRow] = []
    crows: list[CredentialRow] = []
    erows: list[EntitlementRow] = []
    for m in members:
        mrows.append((m.id, m.first_name,
                      m.waiver_signed_on.isoformat() if m.waiver_signed_on else None, 0))
        if m.uid:
            uid = normalise_uid(m.uid)
            if uid is None:
                raise ValueError(f"member {m.id}: uid is not 4-10 bytes of hex")
            crows.append((credential_hash(key, "uid", uid), f"{m.id}-card", m.id, "card", 0))
        if m.code:
            crows.append((credential_hash(key, "qr", m.code), f"{m.id}-code", m.id, "voucher", 0))
        if m.entitlement:
            erows.append(entitlement_row(m.entitlement))
    return mrows, crows, erows


def bulk_insert(
    conn: sqlite3.Connection,
    mrows: Sequence[MemberRow],
    crows: Sequence[CredentialRow],
    erows: Sequence[EntitlementRow],
) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO members(id, first_name, waiver_signed_on, blocked) "
        "VALUES (?,?,?,?)", mrows)
    conn.executemany(
        "INSERT OR REPLACE INTO credentials(hash, id, member_id, kind, blocked) VALUES (?,?,?,?,?)",
        crows)
    conn.executemany(
        "INSERT OR REPLACE INTO entitlements(id, member_id, kind, valid_from, valid_to, valid_on, "
        "entries_total, zones, windows, frozen_from, frozen_to, credential_id, used_remote) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", erows)

