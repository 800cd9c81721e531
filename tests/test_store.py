"""The local store: migrations, membership changes, erasure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.errors import StoreError
from agent.store.local_store import LocalStore
from agent.store.outbox import Outbox
from agent.store.schema import SCHEMA_VERSION
from contracts.membership_changes import parse_changes
from tests.store_helpers import GATE_IN, NOW, load, make_service, member_changes, punch_card

UID = "04A1B2C3D4E5F6"


def test_fresh_store_is_at_current_version_in_wal(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s.db")
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert LocalStore(tmp_path / "n.db", "normal").conn.execute(
        "PRAGMA synchronous").fetchone()[0] == 1


def test_store_from_a_newer_agent_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this agent"):
        LocalStore(path)


def test_garbage_file_is_refused_with_recovery_hint(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="move it aside"):
        LocalStore(path)


def test_upgrade_keeps_data(tmp_path: Path) -> None:
    from agent.store import schema

    path = tmp_path / "s.db"
    conn = sqlite3.connect(path, isolation_level=None)
    # build a version-1 store by hand and put an event in it
    import sqlite_utils

    schema._v1(sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO outbox VALUES (1, 'x', 'access.decision', 't', '{}', 0)")
    conn.close()
    store = LocalStore(path)
    assert store.schema_version_before == 1
    assert store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    cols = [r[1] for r in store.conn.execute("PRAGMA table_info(entitlements)")]
    assert "used_remote" in cols


@pytest.mark.parametrize(
    "bad",
    [
        [{"entity": "member", "op": "upsert"}],
        [{"entity": "member", "op": "upsert", "id": "m", "extra": 1}],
        [{"entity": "credential", "op": "upsert", "id": "c", "member_id": "m", "kind": "card",
          "hash": "04A1B2C3"}],  # a clear UID where a hash belongs
        [{"entity": "entitlement", "op": "upsert", "id": "e", "member_id": "m", "kind": "x"}],
        [{"entity": "entitlement", "op": "upsert", "id": "e", "member_id": "m",
          "kind": "membership", "windows": [{"days": [7], "start": "06:00", "end": "08:00"}]}],
        [{"entity": "rocket", "op": "delete", "id": "x"}],
        "not a list",
    ],
)
def test_malformed_changes_are_rejected(bad: object) -> None:
    with pytest.raises(ValidationError):
        parse_changes(bad)


def test_erasure_removes_every_trace(tmp_path: Path, hmac_key: bytes) -> None:
    svc = make_service(tmp_path / "s.db", hmac_key)
    load(svc.store, member_changes(hmac_key, "m1", UID, punch_card(5), first_name="Špela"))
    assert svc.tap("entry", "uid", UID, GATE_IN).granted
    load(svc.store, [{"entity": "member", "op": "delete", "id": "m1"}])
    svc.forget_recent()  # what every membership writer does after a change
    c = svc.store.conn
    for table in ("members", "credentials", "entitlements", "entry_counters", "presence"):
        assert c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert svc.tap("entry", "uid", UID, GATE_IN).decision.reason.value == "unknown_credential"


def test_outbox_ack_prunes_but_seq_continues(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s.db")
    outbox = Outbox(store, "t1", "d1")
    for _ in range(5):
        with store.transaction() as conn:
            outbox.append(conn, "device.health", {}, NOW)
    assert [e.seq for e in outbox.pending()] == [1, 2, 3, 4, 5]
    assert outbox.ack(3) == 3
    assert outbox.ack(2) == 0  # an old ack changes nothing
    assert [e.seq for e in outbox.pending()] == [4, 5]
    assert outbox.ack(5) == 2 and outbox.depth() == 0
    with store.transaction() as conn:
        assert outbox.append(conn, "device.health", {}, NOW).seq == 6
    assert store.get_meta("acked_seq") == "5"
