"""The snapshot apply on a real SQLite store (agent/store/snapshot_staging.py): a store
wedged by an agent before issue 14 (duplicate indexes on the live tables, shadow tables
half indexed) is repaired at start and takes the next snapshot; staging is idempotent."""

from __future__ import annotations

import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store.local_store import LocalStore
from agent.store.snapshot_staging import SnapshotRows, SnapshotStaging
from agent.store.sync_store import MembershipData
from contracts.signed_envelope import sign_payload
from sync.membership_applier import MembershipApplier, Outcome

KEY = Ed25519PrivateKey.generate()
BASES = ["ix_credentials_member_id", "ix_entitlements_member_id", "ux_credentials_hash",
         "ux_credentials_id", "ux_entitlements_id", "ux_members_id"]


def chunk(snapshot_id: str, version: int, index: int, chunks: int, ids: range) -> bytes:
    return sign_payload(KEY, {
        "v": 1, "tenant": "t1", "kind": "snapshot", "snapshot_id": snapshot_id,
        "version": version, "chunk": index, "chunks": chunks,
        "members": [[f"m{i}", "Ana", None, False] for i in ids],
        "credentials": [[f"c{i}", f"m{i}", "card", f"{i:064x}", False] for i in ids],
        "entitlements": [[f"e{i}", f"m{i}", "membership", None, None, None, None, None,
                          None, None, None, None, None] for i in ids]})


def live_indexes(store: LocalStore) -> list[str]:
    return sorted(r[0].split("__g")[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
        "('members', 'credentials', 'entitlements')"))


def test_a_store_wedged_by_the_old_apply_is_repaired_and_takes_the_next_snapshot(
        tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "agent.sqlite3")
    applier = MembershipApplier(MembershipData(store), "t1", KEY.public_key())
    assert applier.handle(chunk("a", 5, 0, 1, range(3))).outcome is Outcome.APPLIED
    # what the old apply left after a kill between index build and swap, then a second
    # swap: each live table carrying its indexes twice, and a half-built shadow set
    with store.transaction() as conn:
        conn.execute('CREATE UNIQUE INDEX "ux_members_id__g9" ON members (id)')
        conn.execute('CREATE INDEX "ix_credentials_member_id__g9" ON credentials (member_id)')
        conn.execute("CREATE TABLE snap_members (id TEXT)")
        conn.execute('CREATE UNIQUE INDEX "ux_members_id__g10" ON snap_members (id)')
        conn.execute("INSERT INTO snapshot_staging VALUES ('old', 0, '')")
    assert len(live_indexes(store)) == len(BASES) + 2
    applier.recover()
    assert live_indexes(store) == BASES
    assert store.conn.execute("SELECT COUNT(*) FROM snapshot_staging").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'snap\\_%' "
                              "ESCAPE '\\'").fetchone()[0] == 0
    for version in (6, 7):  # and every later snapshot too
        snap = str(uuid.uuid4())
        ids = range(version * 10, version * 10 + 4)
        assert applier.handle(chunk(snap, version, 1, 2, ids[2:])).outcome is Outcome.STAGED
        assert applier.handle(chunk(snap, version, 1, 2, ids[2:])).outcome is Outcome.STAGED
        result = applier.handle(chunk(snap, version, 0, 2, ids[:2]))
        assert result.outcome is Outcome.APPLIED, result
        assert live_indexes(store) == BASES
        assert [r[0] for r in store.conn.execute("SELECT id FROM members ORDER BY id")] == \
            [f"m{i}" for i in ids]
    # the same snapshot again (a redelivery after the swap) changes nothing
    assert applier.handle(chunk(snap, 7, 0, 2, ids[:2])).outcome is Outcome.OLD
    assert store.conn.execute("SELECT COUNT(*) FROM snapshot_staging").fetchone()[0] == 0
    store.close()


def test_a_complete_staged_snapshot_is_finished_at_start(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "agent.sqlite3")
    staging = SnapshotStaging(store)
    rows = range(5)
    staged = staging.stage("s", 3, 0, 1, _rows(rows))
    assert staged.complete
    staging.build_indexes()  # and then the process died before the swap
    store.close()
    store = LocalStore(tmp_path / "agent.sqlite3")
    applier = MembershipApplier(MembershipData(store), "t1", KEY.public_key())
    applier.recover()
    assert store.membership_version() == 3
    assert store.conn.execute("SELECT COUNT(*) FROM members").fetchone()[0] == 5
    assert live_indexes(store) == BASES
    store.close()


def _rows(ids: range) -> SnapshotRows:
    return SnapshotRows(
        members=[(f"m{i}", "Ana", None, False, None) for i in ids],
        credentials=[(f"c{i}", f"m{i}", "card", f"{i:064x}", False) for i in ids],
        entitlements=[(f"e{i}", f"m{i}", "membership", None, None, None, None, None, None,
                       None, None, None, None) for i in ids])
