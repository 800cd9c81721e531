"""A tenant's whole membership data as signed snapshot chunks (docs/protocol.md).

Everything is read in one transaction that sees one consistent state (the version and
every row), streamed from the database with server-side cursors and cut into chunks of
``chunk_rows`` rows; only one chunk is in memory at a time, so a tenant with a million
credentials costs the same memory as one with a thousand.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, Table, func, select

from cloud_bridge import change_log
from cloud_bridge.db_schema import credentials, entitlements, members, read_tx
from cloud_bridge.records import credential_row, entitlement_row, member_row
from cloud_bridge.tenant_keys import TenantKeys
from cloud_bridge.tickets.ledger import snapshot_marks
from contracts.signed_envelope import sign_payload

DEFAULT_CHUNK_ROWS = 2000
_FETCH = 5000


@dataclass(frozen=True, slots=True)
class Chunk:
    version: int
    chunk: int
    chunks: int
    envelope: bytes  # signed, ready to publish


def _count(conn: Connection, table: Table, tenant: str, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)
                            .where(table.c.tenant == tenant, *where)).scalar_one())


def _stream(conn: Connection, stmt: Any) -> Iterator[RowMapping]:
    result = conn.execution_options(yield_per=_FETCH).execute(stmt)
    yield from result.mappings()


def snapshot_envelopes(engine: Engine, keys: TenantKeys,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Yield the signed chunks of the tenant's current state, in order."""
    tenant = keys.tenant
    with read_tx(engine, stream=True) as conn:
        version = change_log.state(conn, tenant).version
        pin_filter = members.c.pin_hash.is_not(None)
        marks = snapshot_marks(conn, tenant)  # printed tickets (cloud_bridge/tickets)
        total = (_count(conn, members, tenant) + _count(conn, credentials, tenant)
                 + _count(conn, entitlements, tenant) + _count(conn, members, tenant, pin_filter)
                 + len(marks))
        chunks = max(1, math.ceil(total / chunk_rows))
        snapshot_id = str(uuid.uuid4())
        sources: list[tuple[str, Any, Callable[[RowMapping], Any]]] = [
            ("members", select(members).where(members.c.tenant == tenant), member_row),
            ("credentials", select(credentials).where(credentials.c.tenant == tenant),
             credential_row),
            ("entitlements", select(entitlements).where(entitlements.c.tenant == tenant),
             entitlement_row),
            ("pins", select(members.c.id, members.c.pin_hash)
             .where(members.c.tenant == tenant, pin_filter),
             lambda r: [r["id"], r["pin_hash"]]),
            ("tickets", marks, lambda r: r),
        ]
        index = 0
        body: dict[str, list[Any]] = {}
        filled = 0

        def seal() -> Chunk:
            payload = {"v": 1, "tenant": tenant, "kind": "snapshot", "snapshot_id": snapshot_id,
                       "version": version, "chunk": index, "chunks": chunks, **body}
            return Chunk(version, index, chunks, sign_payload(keys.signing_key, payload))

        for name, stmt, to_row in sources:
            for row in (stmt if isinstance(stmt, list) else _stream(conn, stmt)):
                body.setdefault(name, []).append(to_row(row))
                filled += 1
                if filled == chunk_rows:
                    yield seal()
                    index, body, filled = index + 1, {}, 0
        if filled or index == 0:
            yield seal()
            index += 1
        if index != chunks:  # cannot happen inside one snapshot transaction
            raise RuntimeError(f"snapshot of {tenant} produced {index} chunks, announced {chunks}")
