"""Small builders for tests that need a real store with members in it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.access.model import GateContext, SiteRules
from agent.access.service import AccessService
from agent.store.local_store import LocalStore
from agent.store.membership import apply_changes
from agent.store.outbox import Outbox
from contracts.credential_hash import credential_hash
from contracts.membership_changes import parse_changes

LJ = ZoneInfo("Europe/Ljubljana")
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
GATE_IN = GateContext("g1", "main", "in")
GATE_OUT = GateContext("g1", "main", "out")


def member_changes(key: bytes, member_id: str, uid: str, entitlement: dict[str, Any],
                   first_name: str = "Ana") -> list[dict[str, Any]]:
    return [
        {"entity": "member", "op": "upsert", "id": member_id, "first_name": first_name},
        {"entity": "credential", "op": "upsert", "id": f"{member_id}-c", "member_id": member_id,
         "kind": "card", "hash": credential_hash(key, "uid", uid)},
        {"entity": "entitlement", "op": "upsert", "id": f"{member_id}-e", "member_id": member_id,
         **entitlement},
    ]


def year_membership() -> dict[str, Any]:
    return {"kind": "membership", "valid_from": int((NOW - timedelta(days=100)).timestamp()),
            "valid_to": int((NOW + timedelta(days=100)).timestamp())}


def punch_card(entries: int) -> dict[str, Any]:
    return {"kind": "punch_card", "entries_total": entries}


def load(store: LocalStore, changes: list[dict[str, Any]]) -> None:
    with store.transaction() as conn:
        apply_changes(conn, parse_changes(changes))


def make_service(path: Path, key: bytes, clock: Callable[[], datetime] = lambda: NOW,
                 rules: SiteRules | None = None, durability: str = "full",
                 **kw: Any) -> AccessService:
    store = LocalStore(path, durability)  # type: ignore[arg-type]
    return AccessService(store, Outbox(store, "t1", "dev1"), rules or SiteRules(tz=LJ), key,
                         clock=clock, **kw)


def damage_store(path: Path) -> None:
    """A store with 400 outbox events whose b-tree pages are then partly overwritten,
    like an SD card that lost writes: opening it must fail with recovery steps."""
    import os

    from agent.store import local_store

    store = LocalStore(path)
    outbox = Outbox(store, "t1", "dev1")
    with store.transaction() as conn:
        for i in range(400):
            outbox.append(conn, "x", {"pad": "p" * 200, "i": i}, datetime.now(UTC))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    local_store._checked.clear()  # the next open checks integrity again
    raw = bytearray(path.read_bytes())
    page = 4096
    for p in range(3, len(raw) // page - 1, 3):  # scribble over a third of the b-tree pages
        raw[p * page + 8: p * page + 200] = os.urandom(192)
    path.write_bytes(bytes(raw))

