"""Group commit of the phone punches on SQLite: one writer thread per database takes the
punches waiting at that moment, runs each in a savepoint of one write transaction and
commits them together, so a burst of punches costs one fsync, not one each, and no
writer waits in SQLite's busy handler (which polls with sleeps of up to 100 ms).

Each punch is still answered only after the commit that stored it (a caller's future
is resolved after the commit), and a punch that fails (refused, invalid) rolls back its
own savepoint only. PostgreSQL, where writers do not exclude each other, does not use it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from cloud_bridge.db_schema import write_tx

MAX_BATCH = 64  # punches in one transaction at most
IDLE_S = 5.0  # the writer thread ends after this long without work (a new one starts)


@dataclass(frozen=True, slots=True)
class _Job:
    work: Callable[[Connection], Any]
    future: Future[Any] = field(default_factory=Future)


class GroupWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[Connection], Any]) -> Future[Any]:
        """``work(conn)`` in the next group transaction; its result (or exception) once
        that transaction committed (or failed)."""
        job = _Job(work)
        self._jobs.put(job)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                 name="attendance-group-writer")
                self._thread.start()
        return job.future

    def _loop(self) -> None:
        while True:
            try:
                first = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:  # submit() puts before it looks at the thread
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        done: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with write_tx(self._engine) as conn:
                for job in batch:
                    try:
                        with conn.begin_nested():
                            done.append((job, job.work(conn), None))
                    except Exception as exc:  # that job's own failure, for its caller
                        done.append((job, None, exc))
        except Exception as exc:  # the transaction failed: no job of it is stored
            for job in batch:
                job.future.set_exception(exc)
            return
        for job, value, error in done:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
