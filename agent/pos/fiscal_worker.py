"""Background worker: sends receipts still owed to FURS (SubsequentSubmit=true, with
backoff kept in the store so it survives restarts) and retries prints that failed."""

from __future__ import annotations

import logging
import threading
import time

from agent.pos.service import ReceiptService

log = logging.getLogger(__name__)


class FiscalWorker:
    def __init__(self, service: ReceiptService, *, print_retry_s: float = 5.0,
                 max_sleep_s: float = 1.0) -> None:
        self.service = service
        self.print_retry_s = print_retry_s
        self.max_sleep_s = max_sleep_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_print = 0.0
        service.on_furs_back = self.furs_back

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pos-fiscal", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def furs_back(self) -> None:
        """FURS answered a live request: send what waits now instead of at its backoff."""
        self.service.retry_all_now()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        done = self.service.process_due()
        now = time.monotonic()
        if now >= self._next_print:
            self._next_print = now + self.print_retry_s
            self.service.print_pending()
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the worker must outlive any one bad receipt
                log.exception("POS fiscal worker iteration failed")
            due = self.service.next_due_in_s()
            sleep = self.max_sleep_s if due is None else min(max(due, 0.02), self.max_sleep_s)
            self._wake.wait(sleep)
            self._wake.clear()
