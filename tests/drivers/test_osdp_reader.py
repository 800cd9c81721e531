"""The ``osdp:`` reader back-end against a real libosdp reader (a PeripheralDevice in its
own process) on the far end of a socat pty pair: card reads over the secure channel,
refusal without it, tamper and link alerts, LED and buzzer feedback."""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("osdp")

import osdp

from drivers.errors import BadPeripheralUrl
from drivers.osdp_reader import OsdpReader, card_value
from drivers.protocols import HealthState, ReaderAlert, ReaderCondition
from drivers.registry import open_peripheral
from tests.drivers.osdp_peer import OsdpPeer
from tests.drivers.reader_helpers import Collector, wait_for, wait_health

pytestmark = pytest.mark.timeout(60)


class Alerts:
    def __init__(self) -> None:
        self.seen: list[ReaderAlert] = []
        self._lock = threading.Lock()

    def __call__(self, alert: ReaderAlert) -> None:
        with self._lock:
            self.seen.append(alert)

    def of(self, condition: ReaderCondition) -> list[bool]:
        with self._lock:
            return [a.active for a in self.seen if a.condition is condition]


def _wiegand26(data: int) -> bytes:
    """A 26-bit frame (even parity, 24 data bits, odd parity), left-aligned in 4 bytes
    as OSDP carries raw bits."""
    even = bin(data >> 12).count("1") % 2
    odd = 1 - bin(data & 0xFFF).count("1") % 2
    frame = even << 25 | data << 1 | odd
    return (frame << 6).to_bytes(4, "big")


@pytest.fixture
def key() -> bytes:
    return os.urandom(16)


@pytest.fixture
def peer(tmp_path: Path, key: bytes) -> Iterator[OsdpPeer]:
    p = OsdpPeer(tmp_path, key).start()
    yield p
    p.close()


def _reader(peer: OsdpPeer, key: bytes, **options: object) -> OsdpReader:
    reader = open_peripheral("reader", "door", f"osdp:{peer.device}?address={peer.address}",
                             {"scbk": key, **options})
    assert isinstance(reader, OsdpReader)
    return reader


def test_card_reads_arrive_over_the_secure_channel(peer: OsdpPeer, key: bytes) -> None:
    reader, reads = _reader(peer, key), Collector()
    reader.start(reads)
    try:
        health = wait_health(reader.health, HealthState.OK)
        assert "secure channel" in health.detail
        peer.wait(lambda s: s.get("sc") is True, "the reader's secure channel")
        latencies = []
        for n in range(24):
            uid = f"04A1B2{n:02X}"
            card_at = peer.present(uid)
            assert reads.wait_count(n + 1)[-1] == uid
            latencies.append(reads.reads[-1].seen_at - card_at)
        assert all(lat > 0 for lat in latencies)
        print(f"\nOSDP card event -> read: median {statistics.median(latencies) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms over {len(latencies)}")
        # a 26-bit Wiegand frame gives the same UID a Wiegand serial reader does
        peer.present(_wiegand26(0x123456).hex(), bits=26)
        assert reads.wait_count(25)[-1] == "00123456"
    finally:
        reader.stop()
    assert reader.health().state is HealthState.DOWN


@pytest.mark.parametrize("reader_key", ["wrong", "install-mode"])
def test_a_reader_without_our_secure_channel_is_refused_not_read(
        tmp_path: Path, key: bytes, reader_key: str) -> None:
    peer = OsdpPeer(tmp_path, os.urandom(16) if reader_key == "wrong" else None).start()
    reader, reads, alerts = _reader(peer, key), Collector(), Alerts()
    reader.set_alert_handler(alerts)
    reader.start(reads)
    try:
        wait_for(lambda: alerts.of(ReaderCondition.REFUSED) == [True], what="a refusal")
        health = reader.health()
        assert health.state is HealthState.DOWN
        assert health.detail.startswith("reader refused: secure channel")
        assert "osdp-install --reader door" in health.detail
        peer.present("04A1B2C3")
        assert reads.wait_count(1, timeout=1.0) == []  # never a plaintext fallback
        assert ReaderCondition.OFFLINE not in [a.condition for a in alerts.seen]
    finally:
        reader.stop()
        peer.close()


def test_tamper_and_link_loss_are_alerts_and_the_link_comes_back(
        peer: OsdpPeer, key: bytes) -> None:
    reader, reads, alerts = _reader(peer, key, retry_s=1), Collector(), Alerts()
    reader.set_alert_handler(alerts)
    reader.start(reads)
    try:
        wait_health(reader.health, HealthState.OK)
        peer.send(op="tamper", open=True)
        wait_for(lambda: alerts.of(ReaderCondition.TAMPER) == [True], what="tamper alert")
        peer.send(op="tamper", open=False)
        wait_for(lambda: alerts.of(ReaderCondition.TAMPER) == [True, False],
                 what="tamper cleared")
        # the reader process dies: socat loses its far end, the port vanishes
        peer.close()
        wait_for(lambda: alerts.of(ReaderCondition.OFFLINE) == [True], timeout=5,
                 what="offline alert")
        assert reader.health().state is HealthState.DOWN
        peer.start()
        wait_health(reader.health, HealthState.OK, timeout=15)
        assert alerts.of(ReaderCondition.OFFLINE) == [True, False]
        peer.present("04A1B2C3")
        assert reads.wait_count(1) == ["04A1B2C3"]
    finally:
        reader.stop()


def test_a_reader_that_stops_answering_goes_offline_and_comes_back(
        peer: OsdpPeer, key: bytes) -> None:
    """An RS-485 cable cut: the adapter stays, the reader falls silent. libosdp gives it
    up after its 8 s online timeout; the agent retries at once when it answers again."""
    reader, reads, alerts = _reader(peer, key, retry_s=1), Collector(), Alerts()
    reader.set_alert_handler(alerts)
    reader.start(reads)
    try:
        wait_health(reader.health, HealthState.OK)
        peer.send(op="silent")
        wait_for(lambda: alerts.of(ReaderCondition.OFFLINE) == [True], timeout=15,
                 what="offline alert")
        assert "stopped answering" in alerts.seen[-1].detail
        assert reader.health().state is HealthState.DOWN
        peer.send(op="resume")
        wait_health(reader.health, HealthState.OK, timeout=15)
        assert alerts.of(ReaderCondition.OFFLINE) == [True, False]
        peer.present("04A1B2C3D4")
        assert reads.wait_count(1) == ["04A1B2C3D4"]
    finally:
        reader.stop()


def test_feedback_drives_the_reader_led_and_buzzer(peer: OsdpPeer, key: bytes) -> None:
    reader = _reader(peer, key)
    reader.start(Collector())
    try:
        wait_health(reader.health, HealthState.OK)
        reader.feedback(True)
        peer.wait(lambda s: s.get("command", {}).get("command") == osdp.Command.Buzzer,
                  "the grant beep")
        reader.feedback(False)
        wait_for(lambda: len(peer.commands(osdp.Command.Buzzer)) == 2, what="the deny beep")
        leds = peer.commands(osdp.Command.LED)
        assert [led["on_color"] for led in leds] == [osdp.CommandLEDColor.Green,
                                                     osdp.CommandLEDColor.Red]
        beeps = peer.commands(osdp.Command.Buzzer)
        assert [b["rep_count"] for b in beeps] == [1, 2]
        assert beeps[0]["on_count"] < beeps[1]["on_count"]  # deny beeps longer
    finally:
        reader.stop()


def test_bad_urls_and_keys_are_refused_with_a_fix() -> None:
    with pytest.raises(BadPeripheralUrl, match="osdp-install --reader r1"):
        open_peripheral("reader", "r1", "osdp:/dev/ttyUSB0", {})
    with pytest.raises(BadPeripheralUrl, match="16 bytes"):
        open_peripheral("reader", "r1", "osdp:/dev/ttyUSB0", {"scbk": b"short"})
    with pytest.raises(BadPeripheralUrl, match="not an OSDP rate"):
        open_peripheral("reader", "r1", "osdp:/dev/ttyUSB0?baud=14400", {"scbk": bytes(16)})
    with pytest.raises(BadPeripheralUrl, match=r"outside 0\.\.126"):
        open_peripheral("reader", "r1", "osdp:/dev/ttyUSB0?address=127", {"scbk": bytes(16)})
    with pytest.raises(BadPeripheralUrl, match="unknown option parity"):
        open_peripheral("reader", "r1", "osdp:/dev/ttyUSB0?parity=E", {"scbk": bytes(16)})
    with pytest.raises(BadPeripheralUrl, match="serial device"):
        open_peripheral("reader", "r1", "osdp:ttyUSB0", {"scbk": bytes(16)})
    assert "scbk" not in repr(open_peripheral("reader", "r1", "osdp:///dev/ttyS0",
                                              {"scbk": bytes(16)}))


def test_card_formats() -> None:
    raw = osdp.CardFormat.Unspecified
    assert card_value({"format": raw, "length": 32, "data": bytes.fromhex("04a1b2c3")}) == \
        ("04A1B2C3", "")
    assert card_value({"format": raw, "length": 12, "data": b"\x12\x30"}) == \
        (None, "bad_format")
    good = _wiegand26(0x123456)
    assert card_value({"format": osdp.CardFormat.Wiegand, "length": 26, "data": good}) == \
        ("00123456", "")
    bad = (int.from_bytes(good, "big") ^ (1 << 31)).to_bytes(4, "big")  # leading parity
    assert card_value({"format": osdp.CardFormat.Wiegand, "length": 26, "data": bad}) == \
        (None, "bad_parity")
    assert card_value({"format": osdp.CardFormat.ASCII, "data": b"04A1B2C3"}) == \
        ("04A1B2C3", "")
