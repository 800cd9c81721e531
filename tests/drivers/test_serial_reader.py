"""Serial reader against pyserial's loop:// and against real socat pseudo-terminals,
including the port vanishing and coming back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.errors import BadPeripheralUrl
from drivers.protocols import CardRead, HealthState
from drivers.registry import open_peripheral
from drivers.serial_reader import SerialReader, parse_serial_url
from tests.drivers.reader_helpers import Collector, wait_for, wait_health
from tests.drivers.socat_pty import SocatPty


def test_url_forms() -> None:
    assert parse_serial_url("serial:///dev/ttyUSB0?baud=19200&format=dec10", {}) == (
        "/dev/ttyUSB0", {"baud": "19200", "format": "dec10"})
    port, opts = parse_serial_url("serial:loop://?logging=debug&format=qr", {"baud": 9600})
    assert port == "loop://?logging=debug" and opts == {"baud": 9600, "format": "qr"}
    with pytest.raises(BadPeripheralUrl, match="device path"):
        parse_serial_url("serial:ttyUSB0", {})
    with pytest.raises(BadPeripheralUrl, match="format 'morse' unknown"):
        SerialReader("r", "serial:loop://", {"format": "morse"})
    with pytest.raises(BadPeripheralUrl, match="baud"):
        SerialReader("r", "serial:loop://", {"baud": "fast"})


@pytest.fixture
def loop_reader() -> Iterator[tuple[SerialReader, Collector]]:
    reader = open_peripheral("reader", "r1", "serial:loop://?format=hex&holdoff_ms=300", {})
    got = Collector()
    reader.start(got)
    assert reader.wait_open(5)
    yield reader, got
    reader.stop()


def test_loop_reads_and_counted_drops(loop_reader: tuple[SerialReader, Collector]) -> None:
    reader, got = loop_reader
    assert reader.port is not None
    reader.port.write(b"04A1B2C3\r\n" + b"\x02" + b"04A1B2C3D4E5F6" + b"\x03")
    assert got.wait_count(2) == ["04A1B2C3", "04A1B2C3D4E5F6"]
    assert {r.kind for r in got.reads} == {"uid"}
    assert all(r.reader_id == "r1" for r in got.reads)
    # garbage of every kind: nothing is delivered, everything is counted, nothing crashes
    reader.port.write(b"04A1\r\n" + b"\xff\xfe\x01\x80\n" + b"Z" * 5000 + b"\n"
                      + b"half-a-fr\x02ame\n" + b"04A1B2C3D4E5F6\n" + b"CAFEBABE\n")
    assert got.wait_count(3)[-1] == "CAFEBABE"
    assert len(got.values()) == 3  # the card repeated within hold-off was dropped
    dropped = dict(reader.health().dropped)
    assert dropped == {"bad_format": 2, "noise": 2, "too_long": 1, "repeat": 1}
    assert reader.health().state is HealthState.OK


def test_card_held_still_is_one_read_until_it_pauses(
        loop_reader: tuple[SerialReader, Collector]) -> None:
    reader, got = loop_reader
    assert reader.port is not None
    for _ in range(5):  # the reader repeats the card every 100 ms while it is held
        reader.port.write(b"04A1B2C3\n")
        wait_for(lambda: reader.port is not None and reader.port.in_waiting == 0, 2)
        got.wait_count(1)
        time.sleep(0.1)
    assert got.values() == ["04A1B2C3"]
    time.sleep(0.35)  # taken away longer than the hold-off: the next read counts
    reader.port.write(b"04A1B2C3\n")
    assert got.wait_count(2) == ["04A1B2C3", "04A1B2C3"]


def test_wiegand_and_qr_formats_on_loop() -> None:
    w = SerialReader("w", "serial:loop://", {"format": "wiegand26"})
    q = SerialReader("q", "serial:loop://?format=qr", {})
    wg, qg = Collector(), Collector()
    w.start(wg)
    q.start(qg)
    try:
        assert w.wait_open(5) and q.wait_open(5)
        assert w.port is not None and q.port is not None
        # FC 1, card 0 with the even parity bit wrong, then a decimal FC,card line
        w.port.write(b"00000000100000000000000001\n12,345\n")
        q.port.write("https://gym.example/q?c=ABC ŽČŠ\r\n".encode())
        assert qg.wait_count(1) == ["https://gym.example/q?c=ABC ŽČŠ"]
        assert qg.reads[0].kind == "qr"
        assert wg.wait_count(1)[-1] == f"{12 << 16 | 345:08X}"
        assert dict(w.health().dropped) == {"bad_parity": 1}
    finally:
        w.stop()
        q.stop()


def test_socat_pty_reads_and_survives_unplug(tmp_path: Path) -> None:
    pty = SocatPty(tmp_path)
    reader = SerialReader("tty", f"serial://{pty.device}?baud=9600&format=dec10", {})
    got = Collector()
    reader.start(got)
    try:
        # no port yet: DOWN, retrying
        wait_for(lambda: "cannot open" in reader.health().detail, 5, "DOWN detail")
        assert reader.health().state is HealthState.DOWN
        pty.start()
        wait_health(reader.health, HealthState.OK)
        pty.write(b"3283263748\r\n")
        assert got.wait_count(1) == ["04A1B2C3"]

        pty.kill()  # unplugged
        gone = wait_health(reader.health, HealthState.DOWN)
        assert str(pty.device) in gone.detail
        pty.start()  # plugged back in: same name, new pty
        wait_health(reader.health, HealthState.OK, timeout=10)
        pty.write(b"0010777212\r\n")
        assert got.wait_count(2)[-1] == "7C72A400"
    finally:
        reader.stop()
        pty.kill()


def test_health_is_true_right_after_start(tmp_path: Path) -> None:
    # edge-agent doctor starts a reader and reads its health at once
    missing = SerialReader("r", f"serial://{tmp_path}/no-such-tty", {})
    loop = SerialReader("l", "serial:loop://", {})
    missing.start(Collector())
    loop.start(Collector())
    try:
        h = missing.health()
        assert h.state is HealthState.DOWN and "cannot open" in h.detail
        assert loop.health().state is HealthState.OK
    finally:
        missing.stop()
        loop.stop()


def test_a_failing_handler_does_not_stop_the_reader() -> None:
    got = Collector()

    def handler(read: CardRead) -> None:
        got(read)
        if len(got.reads) == 1:
            raise RuntimeError("store locked")  # the core failed on the first read

    reader = SerialReader("r", "serial:loop://", {})
    reader.start(handler)
    try:
        assert reader.port is not None
        reader.port.write(b"04A1B2C3\n")
        got.wait_count(1)
        reader.port.write(b"04A1B2C4\n")
        assert got.wait_count(2) == ["04A1B2C3", "04A1B2C4"]
        assert reader.health().state is HealthState.OK
    finally:
        reader.stop()
