"""A durable print queue for non-POS documents (record cards, reports, member QR slips).

Jobs live in the agent store (table ``print_jobs``) from the moment ``submit`` returns,
so a printer that is off, out of paper or unplugged loses nothing: the job is tried at
once, then again from a worker thread with growing delays until it prints. POS receipts
do not go through here; agent/pos/service.py keeps its own print state with the receipt.

Exactly once: the caller's ``job_id`` is the idempotency key (a retried submit returns
the state of the first one and prints nothing), and a job is claimed (``printing``)
in a transaction before it is sent, so the worker and a submit never both send it. A job
found ``printing`` after a crash may or may not be on paper: it becomes ``uncertain``
and waits for a person (``retry``/``cancel``) instead of printing a second time.
Jobs for one printer print in submission order: only the oldest waiting job of a printer
is tried, the others wait behind it. Printed jobs are kept ``keep_printed_s`` (7 days),
which is how long a submit stays idempotent.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import BadInput
from agent.store.local_store import LocalStore
from drivers.errors import DriverError
from drivers.protocols import Printer, PrintJob

log = logging.getLogger(__name__)


class PrintState(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    PRINTING = "printing"  # claimed, being sent
    PRINTED = "printed"
    UNCERTAIN = "uncertain"  # the agent stopped mid-send: a person decides
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PrintStatus:
    job_id: str
    printer_id: str
    state: PrintState
    attempts: int
    last_error: str | None
    next_attempt_ms: int
    created_ms: int
    printed_ms: int | None
    meta: dict[str, str]


_COLUMNS = ("job_id, printer_id, state, attempts, last_error, next_attempt_ms, created_ms, "
            "printed_ms, meta")


def _status(row: Any) -> PrintStatus:
    job_id, printer_id, state, attempts, error, next_ms, created, printed, meta = row
    return PrintStatus(job_id, printer_id, PrintState(state), attempts, error, next_ms,
                       created, printed, json.loads(meta))


class PrintQueue:
    def __init__(self, store: LocalStore, printers: Mapping[str, Printer], *,
                 backoff_s: float = 2.0, max_backoff_s: float = 120.0,
                 keep_printed_s: float = 7 * 86400,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.printers = printers
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.keep_printed_s = keep_printed_s
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recover_interrupted()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _recover_interrupted(self) -> None:
        with self.store.transaction() as conn:
            n = conn.execute(
                "UPDATE print_jobs SET state = ?, updated_ms = ?, last_error = ? "
                "WHERE state = ?",
                (PrintState.UNCERTAIN, self._now_ms(),
                 "the agent stopped while sending it: check whether it printed, then retry "
                 "or cancel it", PrintState.PRINTING)).rowcount
        if n:
            log.warning("%d print jobs were being sent when the agent stopped; marked "
                        "uncertain (retry or cancel them)", n)

    # -- API ------------------------------------------------------------------------------

    def submit(self, printer_id: str, job_id: str, payload: bytes,
               meta: Mapping[str, str] | None = None) -> PrintState:
        """Store the job and try it at once (unless older jobs wait for that printer);
        returns its state. Submitting a job id again returns that job's state and prints
        nothing; the same id with a different payload is refused."""
        if printer_id not in self.printers:
            known = ", ".join(sorted(self.printers)) or "none configured"
            raise BadInput(f"no printer '{printer_id}' (known: {known})")
        if not job_id:
            raise BadInput("a print job needs a job id (its idempotency key)")
        digest = hashlib.sha256(payload).hexdigest()
        now = self._now_ms()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT payload_sha256, state FROM print_jobs WHERE job_id = ?",
                               (job_id,)).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise BadInput(f"print job '{job_id}' exists with a different document; "
                                   "use a new job id for a new document")
                return PrintState(row[1])
            conn.execute(
                "INSERT INTO print_jobs (job_id, printer_id, payload, payload_sha256, meta, "
                "state, next_attempt_ms, created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                (job_id, printer_id, payload, digest, json.dumps(dict(meta or {})),
                 PrintState.PENDING, now, now, now))
            seq = conn.execute("SELECT seq FROM print_jobs WHERE job_id = ?",
                               (job_id,)).fetchone()[0]
            older = conn.execute(
                "SELECT 1 FROM print_jobs WHERE printer_id = ? AND seq < ? AND state IN (?, ?) "
                "LIMIT 1", (printer_id, seq, PrintState.PENDING, PrintState.PRINTING)
            ).fetchone()
        if older is not None:
            self._wake.set()
            return PrintState.PENDING
        return self._attempt(job_id)

    def status(self, job_id: str) -> PrintStatus | None:
        with self.store.lock:
            row = self.store.conn.execute(f"SELECT {_COLUMNS} FROM print_jobs WHERE job_id = ?",
                                          (job_id,)).fetchone()
        return None if row is None else _status(row)

    def pending(self) -> list[PrintStatus]:
        """Jobs not printed yet (waiting, being sent, or uncertain), oldest first."""
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT {_COLUMNS} FROM print_jobs WHERE state IN (?, ?, ?) ORDER BY seq",
                (PrintState.PENDING, PrintState.PRINTING, PrintState.UNCERTAIN)).fetchall()
        return [_status(r) for r in rows]

    def retry(self, job_id: str) -> PrintState:
        """Send an uncertain job again (a person checked it did not print)."""
        return self._move(job_id, PrintState.UNCERTAIN, PrintState.PENDING, wake=True)

    def cancel(self, job_id: str) -> PrintState:
        """Drop a waiting or uncertain job."""
        state = self._move(job_id, PrintState.PENDING, PrintState.CANCELLED)
        if state is not PrintState.CANCELLED:
            state = self._move(job_id, PrintState.UNCERTAIN, PrintState.CANCELLED)
        return state

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="print-queue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def run_due(self) -> int:
        """One pass: for each printer, its oldest waiting job if due, and the ones after it
        while they print. Returns how many printed."""
        printed = 0
        now = self._now_ms()
        with self.store.lock:
            heads = self.store.conn.execute(
                "SELECT printer_id, MIN(seq) FROM print_jobs WHERE state = ? GROUP BY printer_id",
                (PrintState.PENDING,)).fetchall()
        for printer_id, seq in heads:
            while seq is not None:
                with self.store.lock:
                    row = self.store.conn.execute(
                        "SELECT job_id, next_attempt_ms FROM print_jobs WHERE seq = ?",
                        (seq,)).fetchone()
                if row is None or row[1] > now or \
                        self._attempt(row[0]) is not PrintState.PRINTED:
                    break
                printed += 1
                with self.store.lock:
                    nxt = self.store.conn.execute(
                        "SELECT MIN(seq) FROM print_jobs WHERE printer_id = ? AND state = ? "
                        "AND seq > ?", (printer_id, PrintState.PENDING, seq)).fetchone()
                seq = nxt[0] if nxt else None
        return printed

    # -- internals ------------------------------------------------------------------------

    def _move(self, job_id: str, old: PrintState, new: PrintState, wake: bool = False
              ) -> PrintState:
        with self.store.transaction() as conn:
            conn.execute("UPDATE print_jobs SET state = ?, next_attempt_ms = ?, updated_ms = ? "
                         "WHERE job_id = ? AND state = ?",
                         (new, self._now_ms(), self._now_ms(), job_id, old))
            row = conn.execute("SELECT state FROM print_jobs WHERE job_id = ?",
                               (job_id,)).fetchone()
        if row is None:
            raise BadInput(f"no print job '{job_id}'")
        if wake:
            self._wake.set()
        return PrintState(row[0])

    def _attempt(self, job_id: str) -> PrintState:
        now = self._now_ms()
        with self.store.transaction() as conn:
            claimed = conn.execute(
                "UPDATE print_jobs SET state = ?, updated_ms = ? WHERE job_id = ? AND state = ?",
                (PrintState.PRINTING, now, job_id, PrintState.PENDING)).rowcount
            row = conn.execute("SELECT printer_id, payload, meta, attempts, state FROM "
                               "print_jobs WHERE job_id = ?", (job_id,)).fetchone()
        printer_id, payload, meta, attempts, state = row
        if not claimed:
            return PrintState(state)  # printed, being printed by the other thread, or parked
        try:
            self.printers[printer_id].print_job(PrintJob(job_id, bytes(payload),
                                                         json.loads(meta)))
        except (DriverError, OSError, KeyError) as exc:
            # KeyError: the printer left the config; the job waits for it to come back
            error = (f"printer '{printer_id}' is no longer configured"
                     if isinstance(exc, KeyError) else str(exc))
            delay = min(self.backoff_s * 2 ** attempts, self.max_backoff_s)
            now = self._now_ms()
            with self.store.transaction() as conn:
                conn.execute(
                    "UPDATE print_jobs SET state = ?, attempts = attempts + 1, last_error = ?, "
                    "next_attempt_ms = ?, updated_ms = ? WHERE job_id = ?",
                    (PrintState.PENDING, error, now + int(delay * 1000), now, job_id))
            log.warning("print job %s not printed (%s); next try in %.1f s", job_id, error,
                        delay)
            return PrintState.PENDING
        except BaseException as exc:
            # a driver bug: whether anything reached the printer is unknown
            self._park(job_id, f"unexpected {type(exc).__name__}: {exc}")
            raise
        now = self._now_ms()
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE print_jobs SET state = ?, attempts = attempts + 1, last_error = NULL, "
                "printed_ms = ?, updated_ms = ? WHERE job_id = ?",
                (PrintState.PRINTED, now, now, job_id))
        return PrintState.PRINTED

    def _park(self, job_id: str, error: str) -> None:
        now = self._now_ms()
        with self.store.transaction() as conn:
            conn.execute("UPDATE print_jobs SET state = ?, attempts = attempts + 1, "
                         "last_error = ?, updated_ms = ? WHERE job_id = ?",
                         (PrintState.UNCERTAIN, error, now, job_id))

    def _next_due_s(self) -> float:
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT MIN(next_attempt_ms) FROM print_jobs WHERE state = ?",
                (PrintState.PENDING,)).fetchone()
        if row is None or row[0] is None:
            return 60.0
        return max(0.0, (int(row[0]) - self._now_ms()) / 1000)

    def _purge(self) -> None:
        cutoff = self._now_ms() - int(self.keep_printed_s * 1000)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM print_jobs WHERE state IN (?, ?) AND updated_ms < ?",
                         (PrintState.PRINTED, PrintState.CANCELLED, cutoff))

    def _run(self) -> None:
        last_purge = 0.0
        while not self._stop.is_set():
            try:
                self.run_due()
                if time.monotonic() - last_purge > 3600:
                    self._purge()
                    last_purge = time.monotonic()
                wait = self._next_due_s()
            except Exception:  # a store hiccup must not end the worker for good
                log.exception("print queue pass failed; trying again")
                wait = 5.0
            self._wake.wait(min(wait, 60.0))
            self._wake.clear()
