"""PC/SC reader against a real pcscd with vsmartcard's vpcd driver and a virtual card
(tests/drivers/pcsc_peer.py): UID by GET DATA, one read per insertion, status words
checked, pcscd stopping and coming back without restarting the reader."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.protocols import HealthState
from drivers.registry import open_peripheral
from tests.drivers.pcsc_peer import GET_UID, PcscPeer
from tests.drivers.reader_helpers import Collector, wait_for, wait_health


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[PcscPeer]:
    p = PcscPeer(tmp_path)
    p.start()
    yield p
    p.close()


def test_uid_once_per_insertion_and_status_words(peer: PcscPeer) -> None:
    reader = open_peripheral("reader", "door", "pcsc:?reader=virtual pcd 00 00&holdoff_ms=200",
                             {})
    got = Collector()
    reader.start(got)
    try:
        ok = wait_health(reader.health, HealthState.OK)
        assert "Virtual PCD 00 00" in ok.detail
        card = peer.insert("04A1B2C3D4E5F6")
        assert got.wait_count(1) == ["04A1B2C3D4E5F6"]
        assert card.apdus[-1] == GET_UID
        time.sleep(1.0)  # left on the reader: still one read
        assert got.values() == ["04A1B2C3D4E5F6"]
        card.remove()
        time.sleep(0.4)  # past the hold-off
        peer.insert("04A1B2C3D4E5F6")
        assert got.wait_count(2) == ["04A1B2C3D4E5F6"] * 2
        peer.cards[-1].remove()
        # a card the reader cannot read the UID of: dropped and counted, not delivered
        bad = peer.insert("DEADBEEF", status=b"\x6a\x81")
        wait_for(lambda: dict(reader.health().dropped).get("bad_status") == 1, 5, "bad_status")
        bad.remove()
        peer.insert("08112233")  # a random-UID (08..) card, 4 bytes
        assert got.wait_count(3)[-1] == "08112233"
        assert all(r.kind == "uid" and r.reader_id == "door" for r in got.reads)
    finally:
        reader.stop()


def test_pcscd_down_then_back_without_restart(tmp_path: Path) -> None:
    peer = PcscPeer(tmp_path)
    reader = open_peripheral("reader", "door", "pcsc:", {"reader": "Virtual PCD 00 00"})
    got = Collector()
    reader.start(got)
    try:
        wait_for(lambda: "pcscd is not reachable" in reader.health().detail, 5, "DOWN detail")
        assert reader.health().state is HealthState.DOWN
        peer.start()
        wait_health(reader.health, HealthState.OK, timeout=10)
        card = peer.insert("04AABBCCDDEEFF")
        assert got.wait_count(1) == ["04AABBCCDDEEFF"]
        peer.stop()  # pcscd dies with the card still on the reader
        gone = wait_health(reader.health, HealthState.DOWN)
        assert "lost" in gone.detail or "pcscd" in gone.detail
        peer.start()  # the virtual card reconnects: still the same presentation
        wait_health(reader.health, HealthState.OK, timeout=10)
        wait_for(lambda: len(card.apdus) >= 2, 5, "UID read again after the restart")
        time.sleep(0.3)
        assert got.values() == ["04AABBCCDDEEFF"]
        card.remove()
        time.sleep(0.9)  # past the hold-off
        peer.insert("04AABBCCDDEEFF")
        assert got.wait_count(2, timeout=10) == ["04AABBCCDDEEFF"] * 2
    finally:
        reader.stop()
        peer.close()


def test_no_matching_reader_is_down_with_names(peer: PcscPeer) -> None:
    reader = open_peripheral("reader", "door", "pcsc:?reader=ACR122", {})
    reader.start(Collector())
    try:
        wait_for(lambda: "ACR122" in reader.health().detail, 5, "name in detail")
        down = reader.health()
        assert down.state is HealthState.DOWN and "Virtual PCD 00 00" in down.detail
    finally:
        reader.stop()
