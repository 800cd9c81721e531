"""A real pseudo-terminal pair from socat: the test writes on one end, the reader under
test opens the other, as it would a USB-serial reader. ``kill()`` makes both ends vanish
(like unplugging the reader), ``start()`` brings them back under the same names."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

SOCAT = shutil.which("socat")


def open_pty_pair(near: Path, far: Path) -> subprocess.Popen[bytes]:
    """socat joining two raw pseudo-terminals linked at these names; returns once both
    exist. The peripheral under test opens ``near``, the test's peer ``far``."""
    if SOCAT is None:
        pytest.skip("socat is not installed (apt-get install socat; scripts/setup.sh)")
    proc = subprocess.Popen([SOCAT, f"pty,raw,echo=0,link={near}", f"pty,raw,echo=0,link={far}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (near.exists() and far.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.01)
    return proc


class SocatPty:
    def __init__(self, folder: Path) -> None:
        if SOCAT is None:
            pytest.skip("socat is not installed (apt-get install socat; scripts/setup.sh)")
        self.device = folder / "reader-tty"  # what the reader opens
        self.feeder = folder / "feeder-tty"  # what the test writes to
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd: int | None = None

    def start(self) -> None:
        self.proc = open_pty_pair(self.device, self.feeder)
        self._fd = os.open(self.feeder, os.O_WRONLY | os.O_NOCTTY)

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "socat is not running"
        os.write(self._fd, data)

    def kill(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        # SIGKILL leaves socat's symlinks behind: the device is gone, its name dangles
        for link in (self.device, self.feeder):
            link.unlink(missing_ok=True)
