"""Group commit: taps that arrive together share one transaction and one fsync.

With synchronous=FULL every commit waits for the disk; a lone tap still gets its own
commit (no added latency), but when several gates tap at once the first caller becomes
the leader and commits everyone queued behind it together. Each unit of work runs in a
SAVEPOINT of its own, so one failing tap rolls back alone. Hand-written because SQLite
has no group commit across callers and no library adds one to the sqlite3 module.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agent.store.local_store import LocalStore

T = TypeVar("T")


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[sqlite3.Connection], T]
    # a 1-tuple once the work has run, so a work that returns None is told apart
    outcome: tuple[T] | None = None
    error: BaseException | None = None
    done: bool = False
    after: list[Callable[[], None]] = field(default_factory=list)


class GroupCommitter:
    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._cv = threading.Condition()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        self.batches = 0
        self.units = 0

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` inside a committed transaction; returns its result once the
        commit is durable, or raises what it (or the commit) raised."""
        unit: _Unit[T] = _Unit(work)
        with self._cv:
            self._queue.append(unit)
            while self._leading and not unit.done:
                self._cv.wait()
            if not unit.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if not unit.done:
            try:
                self._commit(batch)
            finally:
                with self._cv:
                    self._leading = False
                    self._cv.notify_all()
        if unit.error is not None:
            raise unit.error
        if unit.outcome is None:  # cannot happen: a unit is done with an outcome or an error
            raise RuntimeError("group commit finished a unit without its result")
        return unit.outcome[0]

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        try:
            with self.store.transaction() as conn:
                if len(batch) == 1:
                    # alone: the transaction is the unit, no savepoint round trips
                    batch[0].outcome = (batch[0].work(conn),)
                else:
                    for i, unit in enumerate(batch):
                        self._run_in_savepoint(conn, f"u{i}", unit)
        except BaseException as exc:
            # the unit (when alone) or the commit itself failed: nothing of it is durable
            for unit in batch:
                if unit.error is None:
                    unit.error = exc
        self.batches += 1
        self.units += len(batch)
        with self._cv:
            for unit in batch:
                unit.done = True

    @staticmethod
    def _run_in_savepoint(conn: sqlite3.Connection, name: str, unit: _Unit[Any]) -> None:
        conn.execute(f"SAVEPOINT {name}")
        try:
            unit.outcome = (unit.work(conn),)
        except BaseException as exc:  # handed to its own caller, the others go on
            conn.execute(f"ROLLBACK TO {name}")
            unit.error = exc
        conn.execute(f"RELEASE {name}")
