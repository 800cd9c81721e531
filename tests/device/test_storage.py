"""Storage hygiene: backups before migrations (last N kept), integrity check at open with
recovery steps, refusal of a handed-over store, safe pruning, and the disk-space alarm —
with an injected free-space probe and on a real, tiny, full tmpfs."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from agent.config import load_config
from agent.daemon import AgentDaemon
from agent.errors import StoreError
from agent.store import local_store, schema
from agent.store.local_store import LocalStore
from agent.store.maintenance import (
    BACKUP_DIR,
    STAGING_ABANDONED_S,
    DiskUsage,
    StoreMaintenance,
    backup_store,
    integrity_problems,
)
from agent.store.outbox import Outbox
from tests.store_helpers import damage_store


@pytest.fixture(autouse=True)
def _fresh_integrity_cache() -> Iterator[None]:
    local_store._checked.clear()
    yield
    local_store._checked.clear()


def _v1_store(path: Path, events: int = 1) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    schema._v1(sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    for seq in range(1, events + 1):
        conn.execute("INSERT INTO outbox VALUES (?, ?, 'access.decision', 't', '{}', 0)",
                     (seq, f"id{seq}"))
    conn.close()


def test_migration_is_preceded_by_a_backup_and_old_backups_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    _v1_store(path, events=2)
    store = LocalStore(path)
    assert store.schema_version_before == 1
    backups = list((tmp_path / BACKUP_DIR).glob("*.sqlite3"))
    assert len(backups) == 1 and "migration-v1" in backups[0].name
    assert oct(backups[0].stat().st_mode & 0o777) == "0o600"
    old = sqlite3.connect(backups[0])
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1  # the pre-upgrade state
    assert old.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2
    old.close()
    # reopening an up-to-date store takes no backup
    store.close()
    LocalStore(path).close()
    assert len(list((tmp_path / BACKUP_DIR).glob("*.sqlite3"))) == 1
    # only the newest N are kept
    store = LocalStore(path)
    for _ in range(4):
        backup_store(store.conn, path, "manual", keep=2)
    assert len(list((tmp_path / BACKUP_DIR).glob("*.sqlite3"))) == 2


def test_damaged_store_is_refused_with_recovery_steps(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    damage_store(path)
    with pytest.raises(StoreError) as info:
        LocalStore(path)
    text = str(info.value)
    assert "Recovery:" in text and ".recover" in text and "systemctl stop edge-agent" in text
    assert BACKUP_DIR in text


def test_retired_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    store = LocalStore(path)
    with store.transaction() as conn:
        LocalStore.set_meta(conn, "retired", json.dumps({"exported_at": "2026-01-01T00:00:00Z",
                                                         "last_seq": 7}))
    store.close()
    local_store._checked.clear()
    with pytest.raises(StoreError, match="handed over to a replacement device"):
        LocalStore(path)


def test_prune_drops_only_what_is_useless(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "agent.sqlite3")
    outbox = Outbox(store, "t", "d")
    now = 1_800_000_000.0
    from datetime import UTC, datetime

    with store.transaction() as conn:
        conn.execute("INSERT INTO used_tokens VALUES (x'01', ?)", (int(now * 1000) - 1,))
        conn.execute("INSERT INTO used_tokens VALUES (x'02', ?)", (int(now * 1000) + 60_000,))
        for _ in range(5):
            outbox.append(conn, "access.decision", {}, datetime.now(UTC))
        conn.execute("INSERT INTO snapshot_staging VALUES ('s1', 0, '')")
        conn.execute("CREATE TABLE snap_members(id TEXT)")
    clock = [now]
    m = StoreMaintenance(store, outbox, wall_clock=lambda: clock[0])
    first = m.prune()
    assert first.used_tokens == 1 and not first.staging_dropped
    assert store.conn.execute("SELECT COUNT(*) FROM used_tokens").fetchone()[0] == 1
    clock[0] += STAGING_ABANDONED_S - 10  # still within the grace period
    assert not m.prune().staging_dropped
    clock[0] += 20
    assert m.prune().staging_dropped
    assert store.conn.execute("SELECT COUNT(*) FROM snapshot_staging").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'snap_members'"
                              ).fetchone()[0] == 0
    # shadow tables without any staged chunk are leftovers at once
    with store.transaction() as conn:
        conn.execute("CREATE TABLE snap_credentials(id TEXT)")
    assert m.prune().staging_dropped
    assert outbox.depth() == 5  # unacknowledged events are never pruned


class FakeDisk:
    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, _path: Path) -> DiskUsage:
        return DiskUsage(10_000_000, 10_000_000 - self.free, self.free)


def test_disk_alarm_with_injected_probe(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                        ) -> None:
    store = LocalStore(tmp_path / "agent.sqlite3")
    outbox = Outbox(store, "t", "d")
    disk = FakeDisk(5_000_000)
    m = StoreMaintenance(store, outbox, min_free_bytes=1_000_000, free_space=disk)
    m.check_disk()
    assert m.alarm is None and outbox.depth() == 0
    disk.free = 900_000
    with caplog.at_level(logging.ERROR):
        m.check_disk()
        m.check_disk()  # raised once, not on every check
    assert m.alarm and "nearly full" in m.alarm and "No events are dropped" in m.alarm
    assert [r.message for r in caplog.records].count(f"storage alarm: {m.alarm}") == 1
    events = outbox.pending()
    assert [(e.type, e.data["state"]) for e in events] == [("device.health", "alarm")]
    assert events[0].data["free_bytes"] == 900_000
    disk.free = 2_000_000
    m.check_disk()
    assert m.alarm is None
    assert [e.data["state"] for e in outbox.pending()] == ["alarm", "ok"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "sd"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _seqs(daemon: AgentDaemon) -> list[int]:
    return [r[0] for r in daemon.store.conn.execute("SELECT seq FROM outbox ORDER BY seq")]


def _tap_until_full(daemon: AgentDaemon, m: StoreMaintenance, start: int) -> tuple[list[int],
                                                                                     Exception]:
    answered: list[int] = []
    for i in range(start, start + 50_000):
        try:
            answered.append(daemon.readers["entry"].inject("uid", f"04{i:012X}").event.seq)
        except sqlite3.OperationalError as exc:
            return answered, exc
        m.check_disk()
    raise AssertionError("the disk never filled up")


def test_full_disk_keeps_every_committed_event_and_raises_the_alarm(
    tiny_disk: Path, write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture,
) -> None:
    cfg_path = write_config()
    cfg_path.write_text(cfg_path.read_text().replace(str(cfg_path.parent / "data"),
                                                     str(tiny_disk / "data")))
    other_files = tiny_disk / "old-logs.bin"  # what else fills a card: a technician's leftovers
    other_files.write_bytes(os.urandom(400_000))
    daemon = AgentDaemon(load_config(cfg_path))
    daemon.start()
    m = StoreMaintenance(daemon.store, daemon.outbox, min_free_bytes=300_000,
                         reserve_bytes=200_000, full_below_bytes=20_000)
    m.check_disk()
    assert m.alarm is None and m.ensure_reserve()
    caplog.set_level(logging.INFO)

    first, failure = _tap_until_full(daemon, m, 0)
    assert "full" in str(failure)
    health = [(r[0], json.loads(r[1])) for r in daemon.store.conn.execute(
        "SELECT seq, data FROM outbox WHERE type = 'device.health'")]
    # the alarm came well before the disk was full, as an event, a log line and state
    assert [h["state"] for _, h in health] == ["alarm"] and health[0][0] < first[-1], health
    assert m.alarm and any("storage alarm" in r.message for r in caplog.records)
    # the reserve was given up when the disk filled, and recording went on with it
    assert not m.reserve_path.exists()
    assert any("released the" in r.message for r in caplog.records)
    # every answered tap is durable, seq stays gapless (a failed write leaves no hole)
    rows = _seqs(daemon)
    assert rows == list(range(1, len(rows) + 1)) and set(first) <= set(rows)
    # maintenance on a full disk drops nothing that is unacknowledged
    m.prune()
    assert _seqs(daemon) == rows

    # the technician frees space; the bridge acknowledges the first half
    other_files.unlink()
    half = rows[len(rows) // 2]
    for upto in [*range(200, half, 200), half]:  # acks arrive per batch (batch_size 200)
        daemon.outbox.ack(upto)
        m.check_disk()
    # acknowledged events are gone, every unacknowledged one is kept (+ the "ok" event)
    assert _seqs(daemon) == list(range(half + 1, rows[-1] + 2))
    assert m.alarm is None  # cleared (the reserve returns once there is room for it too)
    assert [json.loads(r[0])["state"] for r in daemon.store.conn.execute(
        "SELECT data FROM outbox WHERE type = 'device.health' ORDER BY seq")] == ["alarm", "ok"]
    last = _seqs(daemon)[-1]
    daemon.stop()

    # after a restart everything is still there, intact, and new events continue the seq
    local_store._checked.clear()
    daemon = AgentDaemon(load_config(cfg_path))
    daemon.start()
    try:
        assert integrity_problems(daemon.store.conn) == []
        assert int(daemon.store.get_meta("acked_seq") or 0) == half
        assert _seqs(daemon) == list(range(half + 1, last + 1))
        assert daemon.readers["entry"].inject("uid", "04FFFFFFFFFFFF").event.seq == last + 1
    finally:
        daemon.stop()
