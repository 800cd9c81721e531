"""The per-tenant change log: every change to membership data gets the next version.

The version is bumped with an UPDATE of the tenant's row, so it is strictly monotonic
across any number of bridge processes (the row lock serialises writers of one tenant on
PostgreSQL; SQLite has one writer anyway), and the entry commits in the same
transaction as the change it records. Callers lock entity rows before calling
:func:`append` (entities first, tenant row last) so that transactions never wait on each
other in a cycle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from cloud_bridge.db_schema import change_log, insert_ignore, tenants


@dataclass(frozen=True, slots=True)
class LogState:
    version: int  # newest version (0: nothing yet)
    log_floor: int  # entries <= log_floor were pruned


@dataclass(frozen=True, slots=True)
class Entry:
    tenant: str
    version: int
    changes: list[dict[str, Any]]


def dumps(changes: list[dict[str, Any]]) -> str:
    return json.dumps(changes, separators=(",", ":"), ensure_ascii=False)


def append(conn: Connection, tenant: str, changes: list[dict[str, Any]]) -> Entry:
    """Record one change set as the tenant's next version, in the caller's transaction."""
    conn.execute(insert_ignore(conn, tenants).values(tenant=tenant, version=0, log_floor=0))
    version = conn.execute(
        update(tenants).where(tenants.c.tenant == tenant)
        .values(version=tenants.c.version + 1).returning(tenants.c.version)).scalar_one()
    conn.execute(change_log.insert().values(
        tenant=tenant, version=version, changes=dumps(changes),
        created_at=int(time.time() * 1000)))
    return Entry(tenant, int(version), changes)


def state(conn: Connection, tenant: str) -> LogState:
    row = conn.execute(select(tenants.c.version, tenants.c.log_floor)
                       .where(tenants.c.tenant == tenant)).first()
    return LogState(0, 0) if row is None else LogState(int(row.version), int(row.log_floor))


def entries(conn: Connection, tenant: str, after: int, upto: int) -> Iterator[tuple[int, str]]:
    """(version, changes JSON text) for after < version <= upto, in version order."""
    result = conn.execute(
        select(change_log.c.version, change_log.c.changes)
        .where(change_log.c.tenant == tenant, change_log.c.version > after,
               change_log.c.version <= upto)
        .order_by(change_log.c.version))
    for row in result:
        yield int(row.version), row.changes


def prune(conn: Connection, tenant: str, keep: int) -> int:
    """Keep the newest ``keep`` versions; devices older than that get a snapshot."""
    current = state(conn, tenant)
    floor = max(current.version - keep, current.log_floor)
    removed = conn.execute(delete(change_log).where(
        change_log.c.tenant == tenant, change_log.c.version <= floor)).rowcount
    conn.execute(update(tenants).where(tenants.c.tenant == tenant).values(log_floor=floor))
    return int(removed or 0)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scrub_member(conn: Connection, tenant: str, member_id: str) -> int:
    """Erasure: remove the person's records from past entries (the name, credential
    hashes, entitlements). Delete records stay, so the log still ends in the same state
    for a device that replays it. Returns how many entries were rewritten."""
    pattern = f'%"{_escape_like(member_id)}"%'
    rows = conn.execute(
        select(change_log.c.version, change_log.c.changes)
        .where(change_log.c.tenant == tenant,
               change_log.c.changes.like(pattern, escape="\\"))).all()
    rewritten = 0
    for row in rows:
        changes = json.loads(row.changes)
        kept = [c for c in changes if not _belongs_to(c, member_id)]
        if len(kept) != len(changes):
            conn.execute(update(change_log).where(
                change_log.c.tenant == tenant, change_log.c.version == row.version)
                .values(changes=dumps(kept)))
            rewritten += 1
    return rewritten


def _belongs_to(change: dict[str, Any], member_id: str) -> bool:
    if change.get("op") != "upsert":
        return False
    if change.get("entity") == "member":
        return change.get("id") == member_id
    return change.get("member_id") == member_id
