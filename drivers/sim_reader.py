"""Simulated card/QR reader: reads arrive through ``inject`` (from ``edge-sim tap``/``qr``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from drivers.errors import PeripheralOffline
from drivers.protocols import CardRead, HealthState, PeripheralHealth, ReadHandler, ReadKind


class SimReader:
    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = reader_id
        self.url = url
        self._on_read: ReadHandler | None = None
        self._lock = threading.Lock()
        # the decisions shown on the reader (ReaderFeedback), newest last
        self.feedback_shown: list[bool] = []

    def start(self, on_read: ReadHandler) -> None:
        self._on_read = on_read

    def stop(self) -> None:
        self._on_read = None

    def health(self) -> PeripheralHealth:
        if self._on_read is None:
            return PeripheralHealth(HealthState.DOWN, "not started")
        return PeripheralHealth.ok("simulated")

    def inject(self, kind: ReadKind, value: str) -> Any:
        handler = self._on_read
        if handler is None:
            raise PeripheralOffline(f"reader {self.id} is not started")
        # a real reader delivers one read at a time; keep that property
        with self._lock:
            return handler(CardRead(self.id, kind, value, time.monotonic()))

    def feedback(self, granted: bool) -> None:
        self.feedback_shown.append(granted)
        del self.feedback_shown[:-32]
