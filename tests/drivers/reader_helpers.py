"""Small helpers shared by the reader tests: a read collector and polling waits.

The waits are generous (20 s): they end as soon as the read arrives, and a busy machine
(two test workers on two cores) can delay a peer process by seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from drivers.protocols import CardRead, HealthState, PeripheralHealth


class Collector:
    def __init__(self) -> None:
        self.reads: list[CardRead] = []
        self._cond = threading.Condition()

    def __call__(self, read: CardRead) -> None:
        with self._cond:
            self.reads.append(read)
            self._cond.notify_all()

    def values(self) -> list[str]:
        with self._cond:
            return [r.value for r in self.reads]

    def wait_count(self, n: int, timeout: float = 20.0) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.reads) >= n, timeout)
            return [r.value for r in self.reads]


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_health(health: Callable[[], PeripheralHealth], state: HealthState,
                timeout: float = 20.0) -> PeripheralHealth:
    wait_for(lambda: health().state is state, timeout, f"health {state.value}")
    return health()
