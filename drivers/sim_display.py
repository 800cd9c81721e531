"""Simulated gate display: remembers what it was asked to show."""

from __future__ import annotations

from typing import Any

from drivers.protocols import DisplayMessage, HealthState, PeripheralHealth


class SimDisplay:
    def __init__(self, display_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = display_id
        self.url = url
        self.shown: list[DisplayMessage] = []
        self._started = False

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._started = False

    def show(self, message: DisplayMessage) -> None:
        self.shown.append(message)
        del self.shown[:-100]  # keep memory bounded on a long-running demo

    def health(self) -> PeripheralHealth:
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        return PeripheralHealth.ok("simulated")
