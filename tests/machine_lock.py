"""A lock over something of the machine's that only one test may use at a time, held
across the pytest-xdist workers (scripts/test.sh runs two): pcscd serves one fixed socket
(tests/drivers/pcsc_peer.py); the package tests install the .deb on this machine and boot
systemd on an overlay of its root (tests/packaging). ``fcntl.flock`` on a file in the
temp folder: released by the kernel if the holder dies."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"edge-suite-tests-{name}.lock"


class MachineLock:
    def __init__(self, name: str) -> None:
        self.path = lock_path(name)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another worker's test holds it
            self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    lock = MachineLock(name)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
