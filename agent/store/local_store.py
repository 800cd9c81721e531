"""The agent's SQLite file: connection settings, transactions and small key/value facts.

WAL journal so readers never wait for the writer; ``synchronous=FULL`` by default so a
committed decision survives a power cut (``normal`` trades the last few commits for
speed, and is measured in bench/).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from agent.errors import StoreError
from agent.store import maintenance
from agent.store.schema import SCHEMA_VERSION, current_version, migrate

Durability = Literal["full", "normal"]

# stores whose integrity was checked by this process (the daemon and its MQTT link each
# open a connection; the file is checked once)
_checked: set[Path] = set()
_checked_lock = threading.Lock()


class LocalStore:
    def __init__(self, path: str | Path, durability: Durability = "full") -> None:
        self.path = Path(path)
        self.durability = durability
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit mode: every write goes through transaction() with BEGIN IMMEDIATE
            self.conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={durability.upper()}")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.execute("PRAGMA busy_timeout=10000")
            # deleted rows (acked events, erased members) are overwritten, not left in free
            # pages where a stolen SD card would still show them
            self.conn.execute("PRAGMA secure_delete=ON")
            self._check_and_back_up()
            self.schema_version_before = migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"store {self.path} cannot be opened ({exc}); if the file is damaged, move it "
                "aside and restart: the agent will fetch a fresh membership snapshot, but "
                "unsent events in it are lost unless recovered with `sqlite3 .recover`. "
                + maintenance.recovery_steps(self.path)
            ) from exc
        # one writer per connection; sqlite3 objects are not safe to share mid-transaction
        self.lock = threading.RLock()

    def _check_and_back_up(self) -> None:
        """Integrity check once per process, and a backup before any schema migration
        (agent/store/maintenance.py)."""
        key = self.path.resolve()
        with _checked_lock:
            if key not in _checked:
                maintenance.check_at_open(self.conn, self.path)
                _checked.add(key)
        if 0 < current_version(self.conn) < SCHEMA_VERSION:
            maintenance.backup_store(self.conn, self.path,
                                     f"migration-v{current_version(self.conn)}")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; takes the write lock up front so the reads inside
        see the state the writes will be based on (no lost updates across connections)."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                # e.g. disk full: SQLite may leave the transaction open; end it so the
                # next transaction (an ack that frees space) can start
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @staticmethod
    def get_meta_in(conn: sqlite3.Connection, key: str, default: str) -> str:
        """Read a fact inside an open transaction."""
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def membership_version(self) -> int:
        return int(self.get_meta("membership_version", "0") or 0)
