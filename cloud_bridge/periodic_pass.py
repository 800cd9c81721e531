"""A background thread that does one pass of some work every so often (the hourly sweeps
that queue notices and alerts). A pass that fails is logged and the next one tries again:
the work it would have done is still there to be found."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicPass:
    def __init__(self, name: str, work: Callable[[], None], interval_s: float) -> None:
        self.name = name
        self.work = work
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except Exception:  # the next pass tries again; nothing is lost meanwhile
                log.exception("%s: pass failed", self.name)
            self._stop.wait(self.interval_s)
