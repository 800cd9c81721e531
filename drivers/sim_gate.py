"""Simulated turnstile/door output.

Options (config table): ``passage`` = "pass" (default: someone walks through after each
pulse), "none" (nobody passes: the gate times out) or "unwired" (no passage sensor).
``passage_delay_ms`` is how long the simulated person takes. ``unplugged`` = true makes
every pulse fail as a controller with a cut cable would (``unplugged`` may be changed at
run time by a test or a technician's simulator).
"""

from __future__ import annotations

import threading
from typing import Any

from drivers.errors import BadPeripheralUrl, PeripheralOffline
from drivers.protocols import (
    Direction,
    GatePulse,
    HealthState,
    PassageHandler,
    PeripheralHealth,
)

_PASSAGE_MODES = ("pass", "none", "unwired")


class SimGate:
    def __init__(self, gate_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = gate_id
        self.url = url
        self.passage = str(options.get("passage", "pass"))
        if self.passage not in _PASSAGE_MODES:
            raise BadPeripheralUrl(
                f"gate {gate_id}: passage must be one of {', '.join(_PASSAGE_MODES)}, "
                f"got '{self.passage}'"
            )
        self.passage_delay_s = float(options.get("passage_delay_ms", 5)) / 1000
        self.pulses: list[GatePulse] = []
        self.held_open = False
        self.unplugged = bool(options.get("unplugged", False))
        self._handler: PassageHandler | None = None
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._started = False

    def set_passage_handler(self, handler: PassageHandler) -> None:
        self._handler = handler

    def hold_open(self, active: bool) -> None:
        self.held_open = active

    def open(self, direction: Direction, pulse_ms: int) -> None:
        if self.unplugged:
            raise PeripheralOffline(f"gate {self.id}: simulated controller unplugged")
        pulse = GatePulse(self.id, direction, pulse_ms)
        with self._lock:
            self.pulses.append(pulse)
        if self.passage == "unwired" or self._handler is None:
            return
        passed = self.passage == "pass"
        handler = self._handler
        timer = threading.Timer(self.passage_delay_s, handler, args=(pulse, passed))
        timer.daemon = True
        timer.start()

    def health(self) -> PeripheralHealth:
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        if self.unplugged:
            return PeripheralHealth(HealthState.DOWN, "simulated controller unplugged")
        return PeripheralHealth.ok(f"simulated, {len(self.pulses)} pulses")
