"""SerialRelayGate against a socat pty pair: a peer thread on the far end reads the exact
command bytes with their arrival times, as an LCUS/Numato board's CH340 would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.errors import BadPeripheralUrl, PeripheralOffline
from drivers.protocols import HealthState, HoldableGate
from drivers.registry import open_peripheral
from drivers.serial_relay_gate import RelayBoard, SerialRelayGate
from tests.drivers.socat_pty import open_pty_pair

SOCAT = shutil.which("socat")

ON1, OFF1 = bytes.fromhex("A00101A2"), bytes.fromhex("A00100A1")
ON2, OFF2 = bytes.fromhex("A00201A3"), bytes.fromhex("A00200A2")


class BoardPeer:
    """The far end of the pty pair: records (monotonic time, bytes) of every read."""

    def __init__(self, folder: Path) -> None:
        self.device = folder / "relay-tty"
        self.far = folder / "board-tty"
        self.chunks: list[tuple[float, bytes]] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.proc = open_pty_pair(self.device, self.far)
        fd = os.open(self.far, os.O_RDONLY | os.O_NOCTTY)
        threading.Thread(target=self._read, args=(fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 256):
                with self._lock:
                    self.chunks.append((time.monotonic(), chunk))
        except OSError:
            pass
        finally:
            os.close(fd)

    def data(self) -> bytes:
        with self._lock:
            return b"".join(c for _, c in self.chunks)

    def frames(self, size: int = 4) -> list[tuple[float, bytes]]:
        """(arrival time, frame) per fixed-size frame."""
        out: list[tuple[float, bytes]] = []
        buf = b""
        with self._lock:
            chunks = list(self.chunks)
        for t, chunk in chunks:
            buf += chunk
            while len(buf) >= size:
                out.append((t, buf[:size]))
                buf = buf[size:]
        return out

    def wait_bytes(self, n: int, timeout: float = 3.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.data()) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.data()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        for link in (self.device, self.far):
            link.unlink(missing_ok=True)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[BoardPeer]:
    p = BoardPeer(tmp_path)
    p.start()
    yield p
    p.kill()


def until(check: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_lcus_pulse_bytes_and_timing(peer: BoardPeer) -> None:
    gate = open_peripheral("gate", "t1", f"serial-relay:{peer.device}?board=lcus"
                           "&channel_in=1&channel_out=2", {"check_ms": 50})
    assert isinstance(gate, SerialRelayGate) and isinstance(gate, HoldableGate)
    gate.start()
    try:
        # on (re)connect the board is put in a known state: both relays off
        assert peer.wait_bytes(8) in (OFF1 + OFF2, OFF2 + OFF1)
        t0 = time.monotonic()
        gate.open("in", 150)
        assert time.monotonic() - t0 < 0.05  # does not block for the pulse
        assert peer.wait_bytes(16)[8:] == ON1 + OFF1
        (t_on, on), (t_off, off) = peer.frames()[2:4]
        assert (on, off) == (ON1, OFF1)
        assert 0.14 <= t_off - t_on <= 0.23
        gate.open("out", 80)
        assert peer.wait_bytes(24)[16:] == ON2 + OFF2
        (t_on, _), (t_off, _) = peer.frames()[4:6]
        assert 0.075 <= t_off - t_on <= 0.16
        assert gate.health().state is HealthState.OK
    finally:
        gate.stop()


def test_hold_open_and_release(peer: BoardPeer) -> None:
    gate = SerialRelayGate("t1", f"serial-relay:{peer.device}", {"channel_out": 2})
    gate.start()
    try:
        peer.wait_bytes(8)
        gate.hold_open(True)
        gate.open("in", 20)  # a release while held leaves the relay on
        time.sleep(0.1)
        gate.hold_open(False)
        sent = peer.wait_bytes(8 + 4 * 5)[8:]
        assert [sent[i:i + 4] for i in range(0, len(sent), 4)] in (
            [ON1, ON2, ON1, OFF1, OFF2], [ON2, ON1, ON1, OFF1, OFF2],
            [ON1, ON2, ON1, OFF2, OFF1], [ON2, ON1, ON1, OFF2, OFF1])
    finally:
        gate.stop()


def test_board_unplugged_then_back(peer: BoardPeer, tmp_path: Path) -> None:
    gate = SerialRelayGate("t1", f"serial-relay:{peer.device}", {"check_ms": 50})
    gate.start()
    try:
        peer.wait_bytes(4)
        peer.kill()  # the USB cable is pulled
        assert until(lambda: gate.health().state is HealthState.DOWN)
        assert "unplugged" in gate.health().detail or "stopped" in gate.health().detail
        with pytest.raises(PeripheralOffline, match="check its USB cable"):
            gate.open("in", 50)

        back = BoardPeer(tmp_path)
        back.start()
        try:
            assert until(lambda: gate.health().state is HealthState.OK)
            assert back.wait_bytes(4) == OFF1  # known state sent on reconnect
            gate.open("in", 30)
            assert back.wait_bytes(12)[4:] == ON1 + OFF1
        finally:
            back.kill()
    finally:
        gate.stop()


def test_board_missing_at_start_is_reported(tmp_path: Path) -> None:
    gate = SerialRelayGate("t1", f"serial-relay:{tmp_path}/ttyUSB9", {})
    gate.start()
    try:
        health = gate.health()
        assert health.state is HealthState.DOWN
        assert "cannot be opened" in health.detail and "by-id" in health.detail
        with pytest.raises(PeripheralOffline):
            gate.open("in", 50)
    finally:
        gate.stop()


def test_numato_and_ascii_commands(peer: BoardPeer) -> None:
    assert RelayBoard("numato", 19200, 0, "relay on {ch}\r", "relay off {ch}\r").command(
        3, True) == b"relay on 3\r"
    gate = SerialRelayGate("t1", f"serial-relay:{peer.device}?board=ascii",
                           {"on_cmd": "R{ch}=1\\n", "off_cmd": "R{ch}=0\\n", "channel_in": 4})
    gate.start()
    try:
        assert peer.wait_bytes(5) == b"R4=0\n"
        gate.open("in", 30)
        assert peer.wait_bytes(15) == b"R4=0\nR4=1\nR4=0\n"
    finally:
        gate.stop()


@pytest.mark.parametrize(("url", "options", "text"), [
    ("serial-relay:", {}, "names no port"),
    ("serial-relay:/dev/ttyUSB0?board=x10", {}, "board must be"),
    ("serial-relay:/dev/ttyUSB0", {"channel_in": 0}, "channel 0 does not exist"),
    ("serial-relay:/dev/ttyUSB0", {"channel_in": "one"}, "must be numbers"),
])
def test_bad_config(url: str, options: dict[str, object], text: str) -> None:
    with pytest.raises(BadPeripheralUrl, match=text):
        SerialRelayGate("t1", url, options)
