"""Membership snapshots on the device: staged in shadow tables, indexed, swapped in.

Every step can be cut by a kill -9 (or a power cut) at any instruction and be run again:

- **staging**: one transaction per chunk (its rows and its mark in ``snapshot_staging``);
  a chunk already staged is skipped, so a redelivered chunk changes nothing. The first
  chunk of a snapshot also writes the header (meta ``snapshot_staging``: id, version,
  chunk count), so a restarted agent knows whether what it holds is complete.
- **index build**: one index per transaction (each holds the write lock for about a
  second at a million rows; taps get their turn in between). The set to build is the
  live tables' indexes by *base name* (``ux_members_id`` whatever generation suffix it
  carries); an index the shadow table already has from before a kill is not built again,
  so the shadow tables never end up with two of the same.
- **swap**: one transaction drops the live tables, renames the shadow tables in their
  place, keeps the local facts of people who are still members, clears the staging and
  sets the version. It refuses a snapshot no newer than the live data.
- **start**: :meth:`SnapshotStaging.recover` finishes a complete staged snapshot, keeps
  an incomplete one (its remaining chunks may still come), drops anything else left over
  (shadow tables without a header, a header without chunks, a snapshot no newer than the
  live data) and removes duplicate indexes on the live tables that an agent before this
  fix could leave behind.

The SQL lives here, behind this small interface; ``sync/membership_applier.py`` decides
what to do with a message and calls it.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent import fault_points
from agent.errors import BadInput
from agent.store.local_store import LocalStore
from agent.store.membership import set_pin
from agent.store.tickets import apply_mark
from contracts.membership_changes import TicketMark

log = logging.getLogger(__name__)

MEMBERSHIP_TABLES = ("members", "credentials", "entitlements")
SHADOW_PREFIX = "snap_"
HEADER_KEY = "snapshot_staging"
_GENERATION = re.compile(r"__g(\d+)$")
_INDEX_SQL = re.compile(r"^CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+\S+?"
                        r"\s*(\(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class StagedSnapshot:
    snapshot_id: str
    version: int
    chunks: int
    have: int

    @property
    def complete(self) -> bool:
        return self.have >= self.chunks


@dataclass(frozen=True, slots=True)
class SnapshotRows:
    """One chunk's rows, validated by the caller, in column order (docs/protocol.md)."""

    members: Sequence[tuple[Any, ...]] = ()  # with waiver_version (None: unknown) last
    credentials: Sequence[tuple[Any, ...]] = ()
    entitlements: Sequence[tuple[Any, ...]] = ()
    pins: Sequence[tuple[str, str]] = ()
    tickets: Sequence[TicketMark] = ()


@dataclass(frozen=True, slots=True)
class _IndexSpec:
    table: str
    base: str  # the name without its generation suffix
    shape: tuple[bool, tuple[str, ...]]  # unique, columns
    sql: str  # the live index's CREATE statement


class SnapshotStaging:
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    # -- staging ---------------------------------------------------------------------

    def staged(self) -> StagedSnapshot | None:
        with self.store.lock:
            return _header(self.store.conn)

    def stage(self, snapshot_id: str, version: int, chunk: int, chunks: int,
              rows: SnapshotRows) -> StagedSnapshot:
        """Stage one chunk (idempotent). A chunk of another snapshot that is not older than
        the staged one replaces it; one of an older snapshot is not staged."""
        with self.store.transaction() as conn:
            header = _header(conn)
            if header is None or header.snapshot_id != snapshot_id:
                if header is not None and version < header.version:
                    return header
                _drop_shadow(conn)
                _create_shadow_tables(conn)
                LocalStore.set_meta(conn, HEADER_KEY, json.dumps(
                    {"id": snapshot_id, "version": version, "chunks": chunks}))
            elif (header.version, header.chunks) != (version, chunks):
                raise BadInput(f"chunk {chunk} of snapshot {snapshot_id} says version "
                               f"{version} of {chunks} chunks, its first said {header.version} "
                               f"of {header.chunks}")
            seen = conn.execute("SELECT 1 FROM snapshot_staging WHERE snapshot_id = ? AND "
                                "chunk = ?", (snapshot_id, chunk)).fetchone()
            if seen is None:
                _insert_shadow(conn, rows)
                conn.execute("INSERT INTO snapshot_staging(snapshot_id, chunk, changes) "
                             "VALUES (?, ?, '')", (snapshot_id, chunk))
            fault_points.reached("snapshot.stage")
            staged = _header(conn)
        fault_points.reached("snapshot.staged")
        assert staged is not None
        return staged

    def discard(self) -> bool:
        """Drop whatever is staged; True if there was anything."""
        with self.store.transaction() as conn:
            return _drop_shadow(conn)

    # -- index build and swap ------------------------------------------------------------

    def build_indexes(self) -> int:
        """Give the shadow tables the live tables' indexes, each once; returns how many
        were built now. Raises BadInput (and drops the staging) on duplicate keys."""
        with self.store.lock:
            specs = _live_index_specs(self.store.conn)
            generation = _next_generation(self.store.conn)
        built = 0
        for spec in specs:
            try:
                with self.store.transaction() as conn:
                    if _shadow_has(conn, spec):
                        continue
                    name = f"{spec.base}__g{generation}"
                    conn.execute(_shadow_index_sql(spec, name))
            except sqlite3.IntegrityError as exc:
                self.discard()
                raise BadInput(f"snapshot has duplicate keys ({exc}); discarded") from None
            built += 1
            fault_points.reached("snapshot.index")
        return built

    def swap_in(self) -> int | None:
        """Swap the complete, indexed shadow tables in (one transaction); returns the new
        version, or None when the staged snapshot is no newer than the live data (then
        it is dropped)."""
        with self.store.transaction() as conn:
            header = _header(conn)
            if header is None or not header.complete:
                raise BadInput("no complete snapshot is staged")
            missing = [s.base for s in _live_index_specs(conn) if not _shadow_has(conn, s)]
            if missing:
                raise BadInput(f"shadow tables lack indexes {missing}")
            current = int(LocalStore.get_meta_in(conn, "membership_version", "0"))
            if header.version <= current:
                _drop_shadow(conn)
                return None
            for table in MEMBERSHIP_TABLES:
                conn.execute(f'DROP TABLE "{table}"')
                conn.execute(f'ALTER TABLE "{SHADOW_PREFIX}{table}" RENAME TO "{table}"')
            # local facts of people who are still members survive a snapshot
            conn.execute("DELETE FROM entry_counters WHERE entitlement_id NOT IN "
                         "(SELECT id FROM entitlements)")
            conn.execute("DELETE FROM presence WHERE member_id NOT IN (SELECT id FROM members)")
            conn.execute("DELETE FROM employee_pins WHERE member_id NOT IN "
                         "(SELECT id FROM members)")
            conn.execute("DELETE FROM snapshot_staging")
            conn.execute("DELETE FROM meta WHERE key = ?", (HEADER_KEY,))
            LocalStore.set_meta(conn, "membership_version", str(header.version))
            fault_points.reached("snapshot.swap")
        fault_points.reached("snapshot.swapped")
        return header.version

    # -- start -------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Clean up after a kill; returns what was done (for the log)."""
        done = [f"removed duplicate index {name}"
                for name in self._drop_duplicate_live_indexes()]
        with self.store.transaction() as conn:
            header = _header(conn)
            current = int(LocalStore.get_meta_in(conn, "membership_version", "0"))
            if header is None or header.have == 0 or header.version <= current:
                if _drop_shadow(conn):
                    done.append("dropped leftover staging")
                return done
        if not header.complete:
            done.append(f"kept snapshot {header.snapshot_id} ({header.have}/{header.chunks} "
                        "chunks)")
            return done
        self.build_indexes()
        version = self.swap_in()
        done.append(f"finished the staged snapshot (version {version})")
        return done

    def _drop_duplicate_live_indexes(self) -> list[str]:
        removed: list[str] = []
        with self.store.transaction() as conn:
            for table in MEMBERSHIP_TABLES:
                kept: set[str] = set()
                for name, _sql in _indexes(conn, table):
                    base = _GENERATION.sub("", name)
                    if base in kept:
                        conn.execute(f'DROP INDEX "{name}"')
                        removed.append(name)
                    kept.add(base)
        return removed


# -- SQL helpers (all inside the caller's transaction) -----------------------------------


def _header(conn: sqlite3.Connection) -> StagedSnapshot | None:
    raw = LocalStore.get_meta_in(conn, HEADER_KEY, "")
    if not raw:
        return None
    head = json.loads(raw)
    have = conn.execute("SELECT COUNT(*) FROM snapshot_staging WHERE snapshot_id = ?",
                        (head["id"],)).fetchone()[0]
    return StagedSnapshot(str(head["id"]), int(head["version"]), int(head["chunks"]), int(have))


def _shadow_tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'snap\\_%' "
        "ESCAPE '\\'")]


def _drop_shadow(conn: sqlite3.Connection) -> bool:
    tables = _shadow_tables(conn)
    staged = conn.execute("DELETE FROM snapshot_staging").rowcount
    header = conn.execute("DELETE FROM meta WHERE key = ?", (HEADER_KEY,)).rowcount
    for table in tables:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    return bool(tables or staged or header)


def _create_shadow_tables(conn: sqlite3.Connection) -> None:
    for table in MEMBERSHIP_TABLES:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (table,)).fetchone()[0]
        # clone the live table's definition, whatever migrations made of it
        conn.execute(re.sub(rf"^CREATE TABLE \[?\"?{table}\]?\"?",
                            f'CREATE TABLE "{SHADOW_PREFIX}{table}"', sql, count=1))


def _indexes(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL ORDER BY name", (table,))]


def _shape(conn: sqlite3.Connection, index: str) -> tuple[bool, tuple[str, ...]]:
    unique = conn.execute("SELECT \"unique\" FROM pragma_index_list(?) WHERE name = ?",
                          (_table_of(conn, index), index)).fetchone()[0]
    columns = tuple(str(r[0]) for r in conn.execute(
        "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index,)))
    return bool(unique), columns


def _table_of(conn: sqlite3.Connection, index: str) -> str:
    return str(conn.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND "
                            "name = ?", (index,)).fetchone()[0])


def _live_index_specs(conn: sqlite3.Connection) -> list[_IndexSpec]:
    """The live tables' indexes, one per base name."""
    specs: dict[tuple[str, str], _IndexSpec] = {}
    for table in MEMBERSHIP_TABLES:
        for name, sql in _indexes(conn, table):
            base = _GENERATION.sub("", name)
            specs.setdefault((table, base), _IndexSpec(table, base, _shape(conn, name), sql))
    return list(specs.values())


def _shadow_has(conn: sqlite3.Connection, spec: _IndexSpec) -> bool:
    """True if the shadow table has this index; one of the same base with another shape
    (an agent upgraded mid-snapshot) is dropped so that it is built anew."""
    for name, _sql in _indexes(conn, SHADOW_PREFIX + spec.table):
        if _GENERATION.sub("", name) != spec.base:
            continue
        if _shape(conn, name) == spec.shape:
            return True
        conn.execute(f'DROP INDEX "{name}"')
    return False


def _next_generation(conn: sqlite3.Connection) -> int:
    """A suffix no index in the file carries yet (index names are global in SQLite)."""
    top = 0
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"):
        match = _GENERATION.search(name)
        if match:
            top = max(top, int(match.group(1)))
    return top + 1


def _shadow_index_sql(spec: _IndexSpec, name: str) -> str:
    match = _INDEX_SQL.match(spec.sql.strip())
    if match is None:
        raise BadInput(f"cannot clone index {spec.base}: {spec.sql!r}")
    unique = "UNIQUE " if match.group(1) else ""
    return f'CREATE {unique}INDEX "{name}" ON "{SHADOW_PREFIX}{spec.table}" {match.group(2)}'


def _insert_shadow(conn: sqlite3.Connection, rows: SnapshotRows) -> None:
    conn.executemany("INSERT INTO snap_members(id, first_name, waiver_signed_on, blocked, "
                     "waiver_version) VALUES (?,?,?,?,?)", rows.members)
    conn.executemany(
        "INSERT INTO snap_credentials(hash, id, member_id, kind, blocked) "
        "VALUES (coalesce(?4, 'id:' || ?1), ?1, ?2, ?3, ?5)", rows.credentials)
    conn.executemany(
        "INSERT INTO snap_entitlements(id, member_id, kind, valid_from, valid_to, valid_on, "
        "entries_total, zones, windows, frozen_from, frozen_to, credential_id, used_remote) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows.entitlements)
    for member_id, pin_hash in rows.pins:
        set_pin(conn, member_id, pin_hash)
    # ticket marks only ever add (a revocation, more uses): applied to the live table at
    # once, whatever becomes of the snapshot
    for mark in rows.tickets:
        apply_mark(conn, mark)
