"""The hardware back-ends inside the real daemon: gpio gates on gpiozero's MockFactory and
an ESC/POS network printer on the virtual printer, configured through agent.toml."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from agent.config import load_config
from agent.daemon import AgentDaemon
from drivers.escpos_printer import EscposPrinter
from drivers.gpio_gate import GpioGate
from simulators.virtual_printer import VirtualPrinter


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    before = Device.pin_factory
    mock = MockFactory()
    Device.pin_factory = mock
    yield mock
    mock.reset()
    Device.pin_factory = before


@pytest.fixture
def vp(tmp_path: Path) -> Iterator[VirtualPrinter]:
    v = VirtualPrinter("127.0.0.1", 0, tmp_path / "printed")
    v.start()
    yield v
    v.stop()


def until(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_fire_alarm_on_one_controller_frees_every_gpio_gate(
        factory: MockFactory, vp: VirtualPrinter, write_config: Callable[..., Path]) -> None:
    peripherals = f"""
[[gates]]
id = "g1"
url = "gpio:?pin_factory=mock"
pulse_ms = 120
in_pin = 17
out_pin = 27
fire_alarm_pin = 23
fire_alarm_debounce_ms = 20

[[gates]]
id = "g2"
url = "gpio:?pin_factory=mock"
in_pin = 5
active_high = false

[[printers]]
id = "desk"
url = "escpos-net:127.0.0.1:{vp.port}"

[[readers]]
id = "entry"
url = "sim:"
gate = "g1"
direction = "in"
"""
    alarm = factory.pin(23)
    daemon = AgentDaemon(load_config(write_config(gates=peripherals)))
    daemon.start()
    try:
        assert isinstance(daemon.gates["g1"], GpioGate)
        assert isinstance(daemon.printers["desk"], EscposPrinter)
        # the mock input rests at its pull-up (NC contact open): pull it low = no alarm
        alarm.drive_low()
        assert until(lambda: not daemon.fire_alarm)
        factory.pin(17).clear_states()

        daemon.remote_open("g1", "in", "req-1")
        time.sleep(0.25)
        [(_, on), (length, off)] = factory.pin(17).states[1:]
        assert on and not off and 0.115 <= length <= 0.2

        alarm.drive_high()  # the fire panel opens its contact
        assert until(lambda: daemon.fire_alarm)
        assert factory.pin(17).state and factory.pin(27).state
        assert not factory.pin(5).state  # g2 is active-low: held open = pin low
        alarm.drive_low()
        assert until(lambda: not daemon.fire_alarm)
        assert not factory.pin(17).state and factory.pin(5).state

        status = {p["id"]: p for p in daemon.status()["peripherals"]}
        assert status["g1"]["health"] == "ok"
        assert until(lambda: daemon.printers["desk"].health().detail != "not checked yet")
        assert {p["id"]: p for p in daemon.status()["peripherals"]}["desk"]["health"] == "ok"
    finally:
        daemon.stop()
    # a stopped daemon leaves every relay released
    assert not factory.pin(17).state and not factory.pin(27).state
