"""A real PC/SC stack for tests: ``pcscd -f`` with vsmartcard's vpcd reader driver, and a
tiny virtual contactless card speaking vpcd's socket protocol to it.

vpcd (the IFD handler inside pcscd) listens on a TCP port; a virtual card "is inserted"
by connecting to it and "removed" by closing the connection. Every message either way is
a 2-byte big-endian length and the payload; 1-byte messages from vpcd are control codes
(0 power off, 1 power on, 2 reset, 4 get ATR), longer ones are command APDUs. vsmartcard's
own ``vicc`` is not packaged as a program on Debian and does not answer the PC/SC
pseudo-APDU GET DATA (FF CA 00 00 00) that contactless readers implement, so this card
answers it the way an ACR122U or other CCID contactless reader does for a MIFARE card:
UID + 90 00.

pcscd always serves the fixed socket /run/pcscd/pcscd.comm, so only one peer runs at a
time; the vpcd port is private (a config directory of our own via ``pcscd -c``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.machine_lock import MachineLock

PCSCD = shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)
VPCD_LIB = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PID_FILE = Path("/run/pcscd/pcscd.pid")
# ATR of a MIFARE Classic 1K behind a PC/SC part 3 contactless reader
ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
GET_UID = bytes.fromhex("FFCA000000")


def _free_port_pair() -> int:
    # vpcd listens on the configured port for slot 0 and on port + 1 for slot 1
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no two adjacent free TCP ports")


class VirtualCard:
    """One card held on the reader until ``remove()``: reconnects when pcscd restarts."""

    def __init__(self, port: int, uid: bytes, status: bytes = b"\x90\x00") -> None:
        self.port, self.uid, self.status = port, uid, status
        self.apdus: list[bytes] = []
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="virtual-card")
        self._thread.start()

    def _answer(self, msg: bytes) -> bytes | None:
        if len(msg) == 1:
            return ATR if msg[0] == 4 else None  # power on/off/reset need no answer
        self.apdus.append(msg)
        if msg == GET_UID:
            return self.uid + self.status
        return b"\x6D\x00"  # instruction not supported

    def _serve(self, sock: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 2:
                (size,) = struct.unpack("!H", buf[:2])
                if len(buf) < 2 + size:
                    break
                msg, buf = buf[2:2 + size], buf[2 + size:]
                reply = self._answer(msg)
                if reply is not None:
                    sock.sendall(struct.pack("!H", len(reply)) + reply)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
            except OSError:
                self._stop.wait(0.05)  # pcscd not (yet) running
                continue
            sock.settimeout(0.1)
            self._sock = sock
            try:
                self._serve(sock)
            except OSError:
                pass
            finally:
                self._sock = None
                sock.close()

    def remove(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


class PcscPeer:
    def __init__(self, folder: Path) -> None:
        if PCSCD is None:
            pytest.skip("pcscd is not installed (apt-get install pcscd; scripts/setup.sh)")
        if not VPCD_LIB.exists():
            pytest.skip(f"{VPCD_LIB} missing (apt-get install vsmartcard-vpcd)")
        # one pcscd on the machine at a time, across the test workers (released by close)
        self._machine = MachineLock("pcscd")
        self._machine.acquire()
        self.folder = folder
        self.port = _free_port_pair()
        conf = folder / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{self.port}\n'
            f"LIBPATH {VPCD_LIB}\nCHANNELID {self.port}\n")
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.cards: list[VirtualCard] = []
        self._log_mark = 0

    def start(self) -> None:
        assert PCSCD is not None
        if PID_FILE.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(PID_FILE.read_text().strip()), 0)
                raise RuntimeError(f"another pcscd is running (pid file {PID_FILE}); stop it")
            PID_FILE.unlink(missing_ok=True)
        self._log_mark = len(self.log_text())
        log = open(self.folder / "pcscd.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([PCSCD, "-f", "-i", "-c", str(self.conf)],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        # not a probe connection to the vpcd port: that would look like a card inserted
        while "daemon ready" not in self.log_text()[self._log_mark:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pcscd did not start: {self.log_text()[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def insert(self, uid: str, status: bytes = b"\x90\x00") -> VirtualCard:
        card = VirtualCard(self.port, bytes.fromhex(uid), status)
        self.cards.append(card)
        return card

    def close(self) -> None:
        try:
            for card in self.cards:
                card.remove()
            self.stop()
        finally:
            self._machine.release()

    def log_text(self) -> str:
        path = self.folder / "pcscd.log"
        return path.read_text(errors="replace") if path.exists() else ""
