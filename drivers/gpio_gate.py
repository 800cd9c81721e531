"""Turnstile/door output on the Pi's own GPIO (gpiozero), through a relay HAT or module.

URL: ``gpio:`` (gpiozero picks the pin library: lgpio on Pi OS Bookworm), or
``gpio:?pin_factory=lgpio|rpigpio|pigpio|native|mock`` (``mock`` for tests).

Options (the ``[[gates]]`` table):

- ``in_pin`` (required), ``out_pin`` (default: the same relay for both directions):
  BCM numbers (17) or gpiozero names ("GPIO17", "BOARD11").
- the release length is the ``[[gates]]`` table's ``pulse_ms``, which the daemon passes
  to ``open``; ``gpio:?pulse_ms=N`` in the URL fixes it whatever the caller asks.
- ``active_high`` (default true): false for the common relay modules that switch on a
  low input.
- ``passage_pin``: the controller's "passage done" output (dry contact or open collector
  to GND; the internal pull-up is on unless ``passage_pull_up = false``). The first
  activation within ``passage_timeout_ms`` (5000) of a release confirms it; no
  activation reports a timeout. Activations with no release waiting are counted
  (forced or tailgated passages) in the health's dropped counts.
- ``fire_alarm_pin``: the fire panel's free-pass contact, ``fire_alarm_contact`` "nc"
  (default: normally closed to GND, so an open contact *or a cut wire* is an alarm) or
  "no". Reported once stable for ``fire_alarm_debounce_ms`` (100); the daemon then holds
  every gate open (HoldableGate), so one panel input frees the whole site.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from gpiozero import Device, DigitalInputDevice, DigitalOutputDevice
from gpiozero.exc import GPIOZeroError
from gpiozero.pins.mock import MockFactory

from drivers.errors import BadPeripheralUrl, PeripheralOffline
from drivers.protocols import (
    AlarmHandler,
    Direction,
    GatePulse,
    HealthState,
    PassageHandler,
    PeripheralHealth,
)
from drivers.url_options import option_bool

log = logging.getLogger(__name__)

_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


def _pin(gate_id: str, key: str, value: object) -> int | str:
    if isinstance(value, bool) or value is None or value == "":
        raise BadPeripheralUrl(f"gate {gate_id}: {key} must be a BCM pin number like 17 "
                               f"or a name like 'GPIO17', got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text.upper()


def pin_factory(name: str | None) -> Any:
    """The gpiozero pin factory named in the URL; None lets gpiozero choose."""
    if not name:
        return None
    if name == "mock":
        # share the test's factory when it installed one, so it can drive the pins
        if isinstance(Device.pin_factory, MockFactory):
            return Device.pin_factory
        return MockFactory()
    if name not in _FACTORIES:
        raise BadPeripheralUrl(f"unknown pin_factory '{name}' (known: mock, "
                               f"{', '.join(_FACTORIES)})")
    import importlib

    module, cls = _FACTORIES[name]
    return getattr(importlib.import_module(module), cls)()


class GpioGate:
    def __init__(self, gate_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = gate_id
        self.url = url
        query = dict(parse_qsl(url.partition("?")[2]))
        opts: dict[str, Any] = {**query, **options}
        self.factory_name = str(opts.get("pin_factory", "")) or None
        if "in_pin" not in opts:
            raise BadPeripheralUrl(f"gate {gate_id}: set in_pin (the relay's GPIO) in its "
                                   "[[gates]] table")
        self.in_pin = _pin(gate_id, "in_pin", opts["in_pin"])
        self.out_pin = _pin(gate_id, "out_pin", opts["out_pin"]) if "out_pin" in opts \
            else self.in_pin
        self.pulse_ms = int(opts["pulse_ms"]) if "pulse_ms" in opts else None
        self.active_high = option_bool(opts, "active_high", True)
        self.passage_pin = _pin(gate_id, "passage_pin", opts["passage_pin"]) \
            if "passage_pin" in opts else None
        self.passage_pull_up = option_bool(opts, "passage_pull_up", True)
        self.passage_timeout_s = int(opts.get("passage_timeout_ms", 5000)) / 1000
        self.passage_debounce_s = int(opts.get("passage_debounce_ms", 20)) / 1000
        self.fire_alarm_pin = _pin(gate_id, "fire_alarm_pin", opts["fire_alarm_pin"]) \
            if "fire_alarm_pin" in opts else None
        self.fire_alarm_nc = str(opts.get("fire_alarm_contact", "nc")).lower() == "nc"
        if str(opts.get("fire_alarm_contact", "nc")).lower() not in ("nc", "no"):
            raise BadPeripheralUrl(f"gate {gate_id}: fire_alarm_contact must be 'nc' or 'no'")
        self.fire_alarm_debounce_s = int(opts.get("fire_alarm_debounce_ms", 100)) / 1000
        inputs = [p for p in (self.passage_pin, self.fire_alarm_pin) if p is not None]
        if len(set(inputs)) != len(inputs) or set(inputs) & {self.in_pin, self.out_pin}:
            raise BadPeripheralUrl(f"gate {gate_id}: relay, passage and fire-alarm pins must "
                                   "all be different")
        self.factory: Any = None
        self._relays: dict[Direction, Any] = {}
        self._passage: Any = None
        self._alarm: Any = None
        self._lock = threading.Lock()
        self._off_timers: dict[int, threading.Timer] = {}
        self._awaiting: list[tuple[GatePulse, threading.Timer]] = []
        self._last_passage = 0.0
        self._alarm_timer: threading.Timer | None = None
        self._alarm_reported = False
        self._passage_handler: PassageHandler | None = None
        self._alarm_handler: AlarmHandler | None = None
        self._held = False
        self._started = False
        self.pulses = 0
        self.unexpected_passages = 0

    # -- lifecycle ------------------------------------------------------------------------

    def set_passage_handler(self, handler: PassageHandler) -> None:
        self._passage_handler = handler

    def set_alarm_handler(self, handler: AlarmHandler) -> None:
        self._alarm_handler = handler

    def start(self) -> None:
        try:
            self.factory = pin_factory(self.factory_name)
            relay_in = DigitalOutputDevice(self.in_pin, active_high=self.active_high,
                                           initial_value=False, pin_factory=self.factory)
            relay_out = relay_in if self.out_pin == self.in_pin else DigitalOutputDevice(
                self.out_pin, active_high=self.active_high, initial_value=False,
                pin_factory=self.factory)
            self._relays = {"in": relay_in, "out": relay_out}
            if self.passage_pin is not None:
                self._passage = DigitalInputDevice(
                    self.passage_pin, pull_up=self.passage_pull_up,
                    bounce_time=self.passage_debounce_s or None, pin_factory=self.factory)
                self._passage.when_activated = self._on_passage
            if self.fire_alarm_pin is not None:
                self._alarm = DigitalInputDevice(self.fire_alarm_pin, pull_up=True,
                                                 pin_factory=self.factory)
                self._alarm.when_activated = self._on_alarm_edge
                self._alarm.when_deactivated = self._on_alarm_edge
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self._close_devices()
            raise PeripheralOffline(
                f"gate {self.id}: GPIO pins {self._pins_text()} cannot be used ({exc}); "
                "check that no other program (or a second gate entry) uses them and that "
                "the agent's user is in the 'gpio' group") from exc
        self._started = True
        if self._held:  # hold_open(True) came before start (fire alarm at boot)
            self.hold_open(True)
        if self._alarm is not None and self._alarm_active_now():
            self._settle_alarm()  # an alarm already on at boot frees the gates at once

    def stop(self) -> None:
        with self._lock:
            self._started = False
            for timer in list(self._off_timers.values()) + [t for _, t in self._awaiting]:
                timer.cancel()
            self._off_timers.clear()
            self._awaiting.clear()
            if self._alarm_timer is not None:
                self._alarm_timer.cancel()
            self._close_devices()

    def _close_devices(self) -> None:
        devices = {id(d): d for d in (*self._relays.values(), self._passage, self._alarm)
                   if d is not None}
        for device in devices.values():
            try:
                if hasattr(device, "off"):
                    device.off()
                device.close()
            except Exception:  # closing must release what it can
                log.exception("gate %s: closing a GPIO device failed", self.id)
        self._relays, self._passage, self._alarm = {}, None, None

    def _pins_text(self) -> str:
        pins = [f"in={self.in_pin}"]
        if self.out_pin != self.in_pin:
            pins.append(f"out={self.out_pin}")
        if self.passage_pin is not None:
            pins.append(f"passage={self.passage_pin}")
        if self.fire_alarm_pin is not None:
            pins.append(f"fire_alarm={self.fire_alarm_pin}")
        return " ".join(pins)

    def health(self) -> PeripheralHealth:
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        dropped = (("passage_without_release", self.unexpected_passages),) \
            if self.unexpected_passages else ()
        detail = f"GPIO {self._pins_text()}, {self.pulses} pulses"
        if self._alarm_reported:
            detail += ", FIRE ALARM input active"
        if self._held:
            detail += ", held open"
        return PeripheralHealth(HealthState.OK, detail, dropped)

    # -- outputs --------------------------------------------------------------------------

    def open(self, direction: Direction, pulse_ms: int) -> None:
        ms = self.pulse_ms or pulse_ms
        pulse = GatePulse(self.id, direction, ms)
        with self._lock:
            if not self._started:
                raise PeripheralOffline(f"gate {self.id} is not started")
            relay = self._relays[direction]
            self.pulses += 1
            relay.on()
            key = id(relay)
            if key in self._off_timers:  # a second release extends the first
                self._off_timers[key].cancel()
            timer = threading.Timer(ms / 1000, self._end_pulse, args=(relay,))
            timer.daemon = True
            self._off_timers[key] = timer
            timer.start()
            if self._passage is not None and self._passage_handler is not None:
                wait = threading.Timer(ms / 1000 + self.passage_timeout_s,
                                       self._passage_timeout, args=(pulse,))
                wait.daemon = True
                self._awaiting.append((pulse, wait))
                wait.start()

    def _end_pulse(self, relay: Any) -> None:
        with self._lock:
            timer = self._off_timers.get(id(relay))
            if timer is None or timer is not threading.current_thread():
                return  # replaced by a newer release, or stopped
            del self._off_timers[id(relay)]
            if not self._held and self._started:
                relay.off()

    def hold_open(self, active: bool) -> None:
        with self._lock:
            self._held = active
            if not self._started:
                return
            for relay in {id(r): r for r in self._relays.values()}.values():
                if active:
                    relay.on()
                elif id(relay) not in self._off_timers:
                    relay.off()

    # -- inputs ---------------------------------------------------------------------------

    def _on_passage(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_passage < self.passage_debounce_s:
                return  # contact bounce (gpiozero's bounce_time does not cover every pin lib)
            self._last_passage = now
            if not self._awaiting:
                self.unexpected_passages += 1
                return
            pulse, wait = self._awaiting.pop(0)
            wait.cancel()
            handler = self._passage_handler
        if handler is not None:
            handler(pulse, True)

    def _passage_timeout(self, pulse: GatePulse) -> None:
        with self._lock:
            entry = next((e for e in self._awaiting if e[0] is pulse), None)
            if entry is None:
                return
            self._awaiting.remove(entry)
            handler = self._passage_handler
        if handler is not None:
            handler(pulse, False)

    def _alarm_active_now(self) -> bool:
        # with the pull-up, a closed contact reads low (gpiozero: "active")
        closed = bool(self._alarm.is_active)
        return not closed if self.fire_alarm_nc else closed

    def _on_alarm_edge(self) -> None:
        with self._lock:
            if self._alarm_timer is not None:
                self._alarm_timer.cancel()
            self._alarm_timer = threading.Timer(self.fire_alarm_debounce_s, self._settle_alarm)
            self._alarm_timer.daemon = True
            self._alarm_timer.start()

    def _settle_alarm(self) -> None:
        with self._lock:
            if self._alarm is None or not self._started:
                return
            active = self._alarm_active_now()
            if active == self._alarm_reported:
                return  # a bounce that came back: nothing changed
            self._alarm_reported = active
            handler = self._alarm_handler
        log.warning("gate %s: fire alarm input %s", self.id, "ACTIVE" if active else "clear")
        if handler is not None:
            handler(active)
