"""PIN fallback for the time clock, guarded against guessing.

PINs arrive from the bridge only as scrypt hashes (stdlib hashlib.scrypt: memory-hard
and needs no extra package on the device). Failures are counted per employee in the
store, so a restart does not reset a lockout, and per terminal in memory, so one
terminal cannot be used to sweep many employee numbers quickly.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass

from agent.store.local_store import LocalStore
from contracts.pin_hash import check_pin, hash_pin

# what an employee number typed at a terminal may be: new member ids are digits; older
# ones look like "m-3f9a…" (the kiosk pad has a letters page for them)
EMPLOYEE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_EMPLOYEE_ID = re.compile(EMPLOYEE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class PinResult:
    ok: bool
    member_id: str | None = None
    # "wrong", "locked", "terminal_locked", "unknown", "malformed"
    problem: str | None = None
    retry_after_s: int = 0


class PinGuard:
    def __init__(self, store: LocalStore, max_failures: int, lock_minutes: int,
                 terminal_failures_per_minute: int) -> None:
        self.store = store
        self.max_failures = max_failures
        self.lock_ms = lock_minutes * 60_000
        self.terminal_limit = terminal_failures_per_minute
        self._terminal_failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _terminal_blocked(self, terminal: str, now: float) -> int:
        window = self._terminal_failures.setdefault(terminal, deque())
        while window and now - window[0] > 60:
            window.popleft()
        return int(60 - (now - window[0])) + 1 if len(window) >= self.terminal_limit else 0

    def check(self, terminal: str, employee: str, pin: str) -> PinResult:
        now = time.monotonic()
        with self._lock:
            wait = self._terminal_blocked(terminal, now)
            if wait:
                return PinResult(False, problem="terminal_locked", retry_after_s=wait)
        if not (_EMPLOYEE_ID.fullmatch(employee) and pin.isdigit()
                and 4 <= len(pin) <= 12):
            self._count_terminal(terminal, now)
            return PinResult(False, problem="malformed")
        wall_ms = int(time.time() * 1000)
        row = self.store.conn.execute(
            "SELECT pin_hash, failures, locked_until_ms FROM employee_pins WHERE member_id = ?",
            (employee,)).fetchone()
        if row is None:
            check_pin(pin, hash_pin("0000"))  # same cost either way: no employee enumeration
            self._count_terminal(terminal, now)
            return PinResult(False, problem="wrong")
        pin_hash, failures, locked_until = row
        if locked_until and locked_until > wall_ms:
            return PinResult(False, member_id=employee, problem="locked",
                             retry_after_s=(locked_until - wall_ms) // 1000 + 1)
        if check_pin(pin, pin_hash):
            with self.store.transaction() as conn:
                conn.execute("UPDATE employee_pins SET failures = 0, locked_until_ms = NULL "
                             "WHERE member_id = ?", (employee,))
            return PinResult(True, member_id=employee)
        self._count_terminal(terminal, now)
        with self.store.transaction() as conn:
            self._record_failure(conn, employee, failures + 1, wall_ms)
        return PinResult(False, member_id=employee, problem="wrong")

    def _record_failure(self, conn: sqlite3.Connection, employee: str, failures: int,
                        wall_ms: int) -> None:
        locked = wall_ms + self.lock_ms if failures >= self.max_failures else None
        conn.execute("UPDATE employee_pins SET failures = ?, locked_until_ms = ? "
                     "WHERE member_id = ?",
                     (0 if locked else failures, locked, employee))

    def _count_terminal(self, terminal: str, now: float) -> None:
        with self._lock:
            self._terminal_failures.setdefault(terminal, deque()).append(now)
