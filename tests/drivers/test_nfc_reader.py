"""NFC reader (nfcpy) against nfcpy's simulated UDP transport with a card emulated by a
second ContactlessFrontend; the real open-failure path of nfcpy for a missing USB reader;
and the reader vanishing (the transport failing as an unplugged USB device does)."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator

import nfc.clf.udp
import pytest

from drivers.errors import BadPeripheralUrl
from drivers.nfc_reader import NfcReader, nfcpy_path
from drivers.protocols import HealthState
from drivers.registry import open_peripheral
from tests.drivers.nfc_peer import SimulatedCard, free_udp_port
from tests.drivers.reader_helpers import Collector, wait_for, wait_health

OPTS = {"poll_ms": 50, "absent_ms": 1500, "holdoff_ms": 500}


def test_paths() -> None:
    assert nfcpy_path("nfc:usb") == "usb"
    assert nfcpy_path("nfc:usb:072f:2200") == "usb:072f:2200"
    assert nfcpy_path("nfc:tty:ttyUSB0:pn532") == "tty:USB0:pn532"
    assert nfcpy_path("nfc:tty:AMA0:pn532") == "tty:AMA0:pn532"
    assert nfcpy_path("nfc:udp:127.0.0.1:5000") == "udp:127.0.0.1:5000"
    for bad in ("nfc:", "nfc:tty:ttyUSB0", "nfc:bluetooth", "nfc:usb:1:2:3"):
        with pytest.raises(BadPeripheralUrl):
            nfcpy_path(bad)


@pytest.fixture
def card_and_reader() -> Iterator[tuple[SimulatedCard, NfcReader, Collector]]:
    port = free_udp_port()
    card = SimulatedCard(port)
    reader = open_peripheral("reader", "nfc1", f"nfc:udp:127.0.0.1:{port}", OPTS)
    got = Collector()
    reader.start(got)
    wait_health(reader.health, HealthState.OK)
    yield card, reader, got
    reader.stop()
    card.close()


def test_uid_once_per_presentation(
        card_and_reader: tuple[SimulatedCard, NfcReader, Collector]) -> None:
    card, reader, got = card_and_reader
    card.place("04A1B2C3D4E5F6")  # NTAG, 7-byte UID
    assert got.wait_count(1) == ["04A1B2C3D4E5F6"]
    time.sleep(1.5)  # left on the reader: polled ~30 times, still one read
    assert got.values() == ["04A1B2C3D4E5F6"]
    card.place("A1B2C3D4", "classic")  # swapped for a MIFARE Classic 4-byte NUID card
    assert got.wait_count(2)[-1] == "A1B2C3D4"
    card.remove()
    time.sleep(3.0)  # taken away: seen as absent, then past the hold-off
    card.place("A1B2C3D4", "classic")
    assert got.wait_count(3) == ["04A1B2C3D4E5F6", "A1B2C3D4", "A1B2C3D4"]
    assert all(r.kind == "uid" and r.reader_id == "nfc1" for r in got.reads)
    assert reader.health().state is HealthState.OK


def test_missing_usb_reader_is_down_via_real_nfcpy_open() -> None:
    reader = NfcReader("nfc1", "nfc:usb:ffff:ffff", {})
    reader.start(Collector())
    try:
        wait_for(lambda: "ffff:ffff" in reader.health().detail, 5, "DOWN detail")
        assert reader.health().state is HealthState.DOWN
    finally:
        reader.stop()


def test_unplugged_and_replugged(monkeypatch: pytest.MonkeyPatch,
                                 card_and_reader: tuple[SimulatedCard, NfcReader, Collector],
                                 ) -> None:
    card, reader, got = card_and_reader
    card.place("04112233445566")
    assert got.wait_count(1) == ["04112233445566"]
    # unplug: the transport fails the way nfcpy's USB transport does when the device
    # disappears (ENODEV from the next I/O), and reopening finds no device
    unplugged = {"on": True}
    real_sense, real_init = nfc.clf.udp.Device.sense_tta, nfc.clf.udp.init

    def sense_tta(self: object, target: object) -> object:
        if unplugged["on"]:
            raise OSError(errno.ENODEV, "No such device")
        return real_sense(self, target)

    def init(host: str, port: int) -> object:
        if unplugged["on"]:
            raise OSError(errno.ENODEV, "No such device")
        return real_init(host, port)

    monkeypatch.setattr(nfc.clf.udp.Device, "sense_tta", sense_tta)
    monkeypatch.setattr(nfc.clf.udp, "init", init)
    down = wait_health(reader.health, HealthState.DOWN)
    assert "lost" in down.detail or "cannot open" in down.detail
    time.sleep(0.5)
    assert reader.health().state is HealthState.DOWN  # stays down while gone
    unplugged["on"] = False  # plugged back in
    wait_health(reader.health, HealthState.OK, timeout=10)
    card.remove()
    time.sleep(0.1)
    card.place("04998877665544")
    assert got.wait_count(2)[-1] == "04998877665544"
