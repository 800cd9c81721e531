"""Storage hygiene for a device whose SD card must never fill up.

- At open: ``PRAGMA quick_check`` (a damaged file stops start-up with recovery steps),
  a refusal of a store that was handed over to a replacement device, and a backup
  (sqlite3 backup API, to ``<data_dir>/backups/``, last N kept) before any migration.
- While running (:class:`StoreMaintenance`): prune what is safe to drop (expired QR
  token marks, abandoned snapshot staging, old backups), keep the WAL short, and watch
  the free space of the data dir. Unacknowledged outbox rows are **never** dropped:
  when space runs low the agent raises an alarm (log, ``device.health`` event, metric,
  /healthz) and keeps every event.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from agent.errors import StoreError
from agent.store.tickets import prune_expired

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"
DEFAULT_KEEP_BACKUPS = 3
DEFAULT_MIN_FREE_MB = 100
# staged snapshot chunks that have not grown for this long belong to an abandoned snapshot
STAGING_ABANDONED_S = 24 * 3600
RETIRED_KEY = "retired"
RESERVE_FILE = ".space-reserve"
DEFAULT_RESERVE_MB = 16
# below this, writes are about to fail: the reserve is released so the outbox can go on
# recording and acks and WAL checkpoints (which need a little space to free a lot) work
FULL_BELOW_BYTES = 256 * 1024
# the alarm clears only with 20 % more than the threshold free, so it does not flap
CLEAR_FACTOR = 1.2


# -- checks at open ---------------------------------------------------------------------

def integrity_problems(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """What ``PRAGMA quick_check`` finds; empty when the file is sound."""
    rows = conn.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def recovery_steps(path: Path) -> str:
    return (
        f"Recovery: 1) stop the agent (systemctl stop edge-agent); "
        f"2) keep the damaged file: mv {path} {path}.damaged (and its -wal/-shm files); "
        f"3) salvage unsent events: sqlite3 {path}.damaged '.recover' | sqlite3 {path}; "
        f"if that fails, restore the newest file of {path.parent / BACKUP_DIR} instead; "
        "4) start the agent: it fetches a fresh membership snapshot from the bridge. "
        "`edge-agent doctor` re-checks the file."
    )


def check_at_open(conn: sqlite3.Connection, path: Path) -> None:
    """Raise StoreError with recovery steps when the store is damaged or retired."""
    problems = integrity_problems(conn)
    if problems:
        raise StoreError(
            f"store {path} failed its integrity check ({'; '.join(problems)}). "
            + recovery_steps(path)
        )
    retired = retired_info(conn)
    if retired is not None:
        raise StoreError(
            f"store {path} was handed over to a replacement device at "
            f"{retired.get('exported_at', '?')} (events up to seq "
            f"{retired.get('last_seq', '?')}); it must not send events again. Move the data "
            f"dir aside (mv {path.parent} {path.parent}.old) to start this device afresh."
        )


def retired_info(conn: sqlite3.Connection) -> dict[str, Any] | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (RETIRED_KEY,)).fetchone()
    except sqlite3.OperationalError:  # a brand-new file has no meta table yet
        return None
    return None if row is None else dict(json.loads(row[0]))


# -- backups ----------------------------------------------------------------------------

def backup_store(conn: sqlite3.Connection, path: Path, reason: str,
                 keep: int = DEFAULT_KEEP_BACKUPS) -> Path:
    """Copy the live store with SQLite's online backup API; keeps the newest ``keep``."""
    folder = path.parent / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    size = path.stat().st_size if path.exists() else 0
    wal = path.with_name(path.name + "-wal")
    size += wal.stat().st_size if wal.exists() else 0
    free = shutil.disk_usage(folder).free
    if free < size * 1.2 + 1024 * 1024:
        raise StoreError(
            f"not enough free space in {folder} to back up the store before upgrading it "
            f"(need about {size * 1.2 / 1e6:.0f} MB, have {free / 1e6:.0f} MB); free some "
            "space on the data partition and restart"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{path.stem}-{stamp}-{reason}.sqlite3"
    partial = target.with_suffix(".partial")
    dest = sqlite3.connect(partial)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    partial.chmod(0o600)
    os.replace(partial, target)
    prune_backups(folder, keep)
    log.info("store backed up before %s to %s", reason, target)
    return target


def prune_backups(folder: Path, keep: int = DEFAULT_KEEP_BACKUPS) -> int:
    if not folder.is_dir():
        return 0
    for partial in folder.glob("*.partial"):  # a backup cut short by a power loss
        partial.unlink(missing_ok=True)
    backups = sorted(folder.glob("*.sqlite3"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in backups[max(keep, 1):]:
        old.unlink(missing_ok=True)
    return max(len(backups) - max(keep, 1), 0)


# -- disk space -------------------------------------------------------------------------

class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


FreeSpaceProbe = Callable[[Path], DiskUsage]


def disk_usage(path: Path) -> DiskUsage:
    u = shutil.disk_usage(path)
    return DiskUsage(u.total, u.used, u.free)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


# -- the periodic job -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PruneReport:
    used_tokens: int = 0
    staging_dropped: bool = False
    backups: int = 0
    tickets: int = 0  # rows of printed tickets that ended (agent/store/tickets.py)


class StoreMaintenance:
    """Runs in a thread of its own; every step is short and uses the store's own lock."""

    def __init__(
        self,
        store: Any,  # agent.store.local_store.LocalStore
        outbox: Any,  # agent.store.outbox.Outbox
        *,
        min_free_bytes: int = DEFAULT_MIN_FREE_MB * 1024 * 1024,
        reserve_bytes: int = DEFAULT_RESERVE_MB * 1024 * 1024,
        full_below_bytes: int = FULL_BELOW_BYTES,
        keep_backups: int = DEFAULT_KEEP_BACKUPS,
        prune_interval_s: float = 600.0,
        disk_interval_s: float = 30.0,
        free_space: FreeSpaceProbe = disk_usage,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.data_dir = Path(store.path).parent
        self.min_free_bytes = min_free_bytes
        self.reserve_bytes = reserve_bytes
        self.full_below_bytes = full_below_bytes
        self.reserve_path = self.data_dir / RESERVE_FILE
        self.keep_backups = keep_backups
        self.prune_interval_s = prune_interval_s
        self.disk_interval_s = disk_interval_s
        self.free_space = free_space
        self.wall_clock = wall_clock
        self.alarm: str | None = None  # technician-readable text while space is low
        self.last_disk: DiskUsage | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.check_disk()
        self._thread = threading.Thread(target=self._run, name="store-maintenance",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_prune = time.monotonic() + min(60.0, self.prune_interval_s)
        try:
            self.ensure_reserve()  # here, not in start(): start-up stays fast
        except OSError as exc:
            log.warning("could not set aside the space reserve: %s", exc)
        while not self._stop.wait(self.disk_interval_s):
            try:
                self.check_disk()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.prune_interval_s
                    self.prune()
            except Exception:  # maintenance must never take the agent down
                log.exception("store maintenance step failed")

    # -- pruning -------------------------------------------------------------------

    def prune(self) -> PruneReport:
        """Drop what is provably useless. Never touches the outbox: acknowledged events
        are deleted on ack; unacknowledged ones stay until the bridge has them."""
        now_ms = int(self.wall_clock() * 1000)
        with self.store.transaction() as conn:
            tokens = conn.execute("DELETE FROM used_tokens WHERE expires_ms <= ?",
                                  (now_ms,)).rowcount
            tickets = prune_expired(conn, now_ms // 1000)
        staging = self._drop_abandoned_staging(now_ms)
        backups = prune_backups(self.data_dir / BACKUP_DIR, self.keep_backups)
        self._checkpoint("TRUNCATE")
        report = PruneReport(tokens, staging, backups, tickets)
        if tokens or staging or backups or tickets:
            log.info("store pruned: used_tokens=%d snapshot_staging_dropped=%s backups=%d "
                     "tickets=%d", tokens, staging, backups, tickets)
        return report

    def _drop_abandoned_staging(self, now_ms: int) -> bool:
        with self.store.transaction() as conn:
            snap_tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'snap\\_%' "
                "ESCAPE '\\'")]
            staged = conn.execute("SELECT snapshot_id, COUNT(*) FROM snapshot_staging "
                                  "GROUP BY snapshot_id").fetchall()
            mark = f"{staged[0][0]}:{staged[0][1]}" if staged else ""
            seen_raw = self.store.get_meta_in(conn, "maintenance.staging_seen", "")
            seen_mark, _, seen_ms = seen_raw.rpartition("@")
            if staged and seen_mark == mark:
                abandoned = now_ms - int(seen_ms or now_ms) >= STAGING_ABANDONED_S * 1000
            else:
                # shadow tables without staged chunks are always leftovers
                abandoned = not staged and bool(snap_tables)
                if staged:
                    self.store.set_meta(conn, "maintenance.staging_seen", f"{mark}@{now_ms}")
            if not abandoned:
                return False
            conn.execute("DELETE FROM snapshot_staging")
            for table in snap_tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            conn.execute("DELETE FROM meta WHERE key = 'maintenance.staging_seen'")
            # the staged snapshot's header (agent/store/snapshot_staging.py)
            conn.execute("DELETE FROM meta WHERE key = 'snapshot_staging'")
        log.info("dropped an abandoned membership snapshot (%d shadow tables); the bridge "
                 "sends a fresh one on request", len(snap_tables))
        return True

    # -- disk space ------------------------------------------------------------------

    def ensure_reserve(self) -> bool:
        """Hold ``reserve_bytes`` of the partition in a file, when there is room for it."""
        if self.reserve_bytes <= 0 or self.reserve_path.exists():
            return self.reserve_path.exists()
        usage = self.free_space(self.data_dir)
        if usage.free < self.min_free_bytes + self.reserve_bytes:
            return False
        tmp = self.reserve_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            chunk = b"\0" * (1024 * 1024)
            left = self.reserve_bytes
            while left > 0:  # real blocks, not a sparse file: the space must be taken
                left -= f.write(chunk[:left])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.reserve_path)
        return True

    def release_reserve(self) -> bool:
        if not self.reserve_path.exists():
            return False
        self.reserve_path.unlink()
        log.error("data partition full: released the %.1f MB space reserve so events keep "
                  "being recorded and acknowledged", self.reserve_bytes / 1e6)
        return True

    def check_disk(self) -> DiskUsage:
        usage = self.free_space(self.data_dir)
        if usage.free < self.min_free_bytes:
            # first give back the WAL file's high-water space, then judge
            self._checkpoint("TRUNCATE")
            usage = self.free_space(self.data_dir)
        low = usage.free < self.min_free_bytes
        if usage.free < self.full_below_bytes and self.release_reserve():
            usage = self.free_space(self.data_dir)
        self.last_disk = usage
        if low and self.alarm is None:
            self.alarm = (
                f"data partition nearly full: {_mb(usage.free)} free of {_mb(usage.total)} "
                f"(alarm below {_mb(self.min_free_bytes)}). No events are dropped; free "
                "space (journalctl --vacuum-size=50M, remove old files on the card) or check "
                f"why events are not acknowledged (outbox depth {self._depth()})"
            )
            log.error("storage alarm: %s", self.alarm)
            self._health_event("alarm", usage)
        elif self.alarm is not None and usage.free >= self.min_free_bytes * CLEAR_FACTOR:
            self.alarm = None
            log.warning("storage alarm cleared: %s free", _mb(usage.free))
            self._health_event("ok", usage)
        # keep the WAL short (a PASSIVE checkpoint never waits for anyone)
        self._checkpoint("PASSIVE")
        if not low and not self.reserve_path.exists():
            self.ensure_reserve()
        return usage

    def _checkpoint(self, mode: str) -> None:
        try:
            with self.store.lock:
                self.store.conn.execute(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.Error as exc:  # full or busy: the next round tries again
            log.debug("wal checkpoint (%s) skipped: %s", mode, exc)

    def _depth(self) -> int | str:
        try:
            return int(self.outbox.depth())
        except sqlite3.Error:
            return "unknown"

    def _health_event(self, state: str, usage: DiskUsage) -> None:
        data = {"component": "storage", "state": state, "free_bytes": usage.free,
                "total_bytes": usage.total, "min_free_bytes": self.min_free_bytes}
        try:
            with self.store.transaction() as conn:
                self.outbox.append(conn, "device.health", data, datetime.now(UTC))
        except sqlite3.Error as exc:
            # the alarm itself must not fail the agent; the log and the metric still say it
            log.error("could not record the storage %s event: %s", state, exc)
