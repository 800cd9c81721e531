"""GpioGate on gpiozero's MockFactory: pulse lengths from the pins' state history,
passage feedback, debounced fire-alarm input and hold-open."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.errors import BadPeripheralUrl, PeripheralOffline
from drivers.gpio_gate import GpioGate
from drivers.protocols import FireAlarmInput, GatePulse, HealthState, HoldableGate
from drivers.registry import open_peripheral


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    before = Device.pin_factory
    mock = MockFactory()
    Device.pin_factory = mock
    yield mock
    mock.reset()
    Device.pin_factory = before


def gate(options: dict[str, Any]) -> GpioGate:
    g = open_peripheral("gate", "g1", "gpio:?pin_factory=mock", options)
    assert isinstance(g, GpioGate)
    return g


def high_periods(pin: Any) -> list[float]:
    """Lengths (s) of the pin's completed high periods, from MockPin.states (each entry:
    seconds since the previous change, new state)."""
    out: list[float] = []
    for prev, cur in zip(pin.states, pin.states[1:], strict=False):
        if prev.state and not cur.state:
            out.append(cur.timestamp)
    return out


def test_pulse_per_direction_measured_on_the_pin(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "out_pin": 27})
    g.start()
    pin_in, pin_out = factory.pin(17), factory.pin(27)
    t0 = time.monotonic()
    g.open("in", 200)
    assert time.monotonic() - t0 < 0.05  # open() must not block for the pulse
    assert pin_in.state
    time.sleep(0.3)
    assert not pin_in.state
    [length] = high_periods(pin_in)
    assert 0.195 <= length <= 0.28
    assert high_periods(pin_out) == []
    g.open("out", 100)
    time.sleep(0.2)
    [length] = high_periods(pin_out)
    assert 0.095 <= length <= 0.18
    assert g.health().state is HealthState.OK and "2 pulses" in g.health().detail
    g.stop()
    assert g.health().state is HealthState.DOWN


def test_active_low_relay_and_fixed_pulse_option(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "active_high": False, "pulse_ms": 80})
    g.start()
    pin = factory.pin(17)
    assert pin.state  # relay off = pin high on active-low modules
    pin.clear_states()
    g.open("out", 1000)  # out uses the same relay; the option fixes the length
    assert not pin.state
    time.sleep(0.15)
    assert pin.state
    lows = [cur.timestamp for prev, cur in zip(pin.states, pin.states[1:], strict=False)
            if not prev.state and cur.state]
    assert len(lows) == 1 and 0.075 <= lows[0] <= 0.16
    g.stop()


def test_passage_confirmed_timed_out_and_unexpected(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "passage_pin": 5, "passage_timeout_ms": 100,
              "passage_debounce_ms": 0})
    seen: list[tuple[GatePulse, bool]] = []
    done = threading.Event()

    def handler(pulse: GatePulse, passed: bool) -> None:
        seen.append((pulse, passed))
        done.set()

    g.set_passage_handler(handler)
    g.start()
    sensor = factory.pin(5)
    assert sensor.state  # pull-up: idle high
    g.open("in", 50)
    time.sleep(0.02)
    sensor.drive_low()  # the turnstile's "passage done" contact closes
    sensor.drive_high()
    assert seen == [(GatePulse("g1", "in", 50), True)]

    done.clear()
    g.open("in", 50)
    assert done.wait(1)
    assert seen[-1] == (GatePulse("g1", "in", 50), False)

    sensor.drive_low()  # nobody was let through: forced or tailgating
    sensor.drive_high()
    assert len(seen) == 2
    assert dict(g.health().dropped) == {"passage_without_release": 1}
    g.stop()


def test_fire_alarm_nc_contact_debounced(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "fire_alarm_pin": 6, "fire_alarm_debounce_ms": 50})
    assert isinstance(g, FireAlarmInput) and isinstance(g, HoldableGate)
    events: list[bool] = []
    g.set_alarm_handler(events.append)
    g.start()  # the mock input starts at its pull-up level: contact open = alarm
    assert events == [True]
    alarm = factory.pin(6)
    alarm.drive_low()  # NC contact closed: alarm clears
    time.sleep(0.12)
    assert events == [True, False]
    events.clear()

    alarm.drive_high()  # a 10 ms blip is no alarm
    time.sleep(0.01)
    alarm.drive_low()
    time.sleep(0.12)
    assert events == []

    alarm.drive_high()  # contact opens (or the wire is cut): alarm
    time.sleep(0.12)
    assert events == [True]
    assert "FIRE ALARM" in g.health().detail
    alarm.drive_low()
    time.sleep(0.12)
    assert events == [True, False]
    g.stop()


def test_fire_alarm_already_active_at_start(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "fire_alarm_pin": 6})  # pull-up, contact open: alarm
    events: list[bool] = []
    g.set_alarm_handler(events.append)
    g.start()
    assert events == [True]
    g.stop()


def test_normally_open_fire_alarm_contact(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "fire_alarm_pin": 6, "fire_alarm_contact": "no",
              "fire_alarm_debounce_ms": 20})
    events: list[bool] = []
    g.set_alarm_handler(events.append)
    g.start()
    assert events == []
    factory.pin(6).drive_low()  # NO contact closes: alarm
    time.sleep(0.08)
    assert events == [True]
    g.stop()


def test_hold_open_keeps_relays_on_through_pulses(factory: MockFactory) -> None:
    g = gate({"in_pin": 17, "out_pin": 27})
    g.start()
    g.hold_open(True)
    assert factory.pin(17).state and factory.pin(27).state
    g.open("in", 30)
    time.sleep(0.08)
    assert factory.pin(17).state  # the pulse's end does not close a held gate
    assert "held open" in g.health().detail
    g.hold_open(False)
    assert not factory.pin(17).state and not factory.pin(27).state
    g.stop()


def test_bad_options_and_pin_in_use(factory: MockFactory) -> None:
    with pytest.raises(BadPeripheralUrl, match="in_pin"):
        gate({})
    with pytest.raises(BadPeripheralUrl, match="different"):
        gate({"in_pin": 17, "passage_pin": 17})
    with pytest.raises(BadPeripheralUrl, match="pin_factory"):
        GpioGate("g", "gpio:?pin_factory=nope", {"in_pin": 17}).start()
    first = gate({"in_pin": 17})
    first.start()
    with pytest.raises(PeripheralOffline, match="cannot be used"):
        gate({"in_pin": 17}).start()
    first.stop()


def test_a_misspelt_boolean_option_is_refused_not_read_as_false(factory: MockFactory) -> None:
    # one reading of booleans for every back-end (drivers/url_options.option_bool): a typo
    # in active_high used to turn an active-high relay into an active-low one silently
    with pytest.raises(BadPeripheralUrl, match="active_high='ture' is not true/false"):
        gate({"in_pin": 17, "active_high": "ture"})
    assert gate({"in_pin": 17, "active_high": "off"}).active_high is False
