"""A real sd_notify socket: the Unix datagram socket systemd would pass as NOTIFY_SOCKET."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path


class NotifySocket:
    def __init__(self) -> None:
        # sun_path is limited to 108 bytes: keep it short, whatever the test's tmp dir is
        self._dir = Path(tempfile.mkdtemp(prefix="sdn-", dir="/tmp"))
        self.path = self._dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.messages: list[tuple[float, str]] = []

    def env(self, watchdog_usec: int | None = None) -> dict[str, str]:
        out = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_usec:
            out["WATCHDOG_USEC"] = str(watchdog_usec)
        return out

    def receive(self, timeout: float) -> list[tuple[float, str]]:
        """Every datagram line that arrives within ``timeout`` seconds."""
        got: list[tuple[float, str]] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            now = time.monotonic()
            got += [(now, line) for line in data.decode().splitlines()]
        self.messages += got
        return got

    def wait_for(self, line: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, got in self.receive(min(0.2, max(deadline - time.monotonic(), 0.01))):
                if got == line:
                    return at
        raise TimeoutError(f"no {line!r} on the notify socket within {timeout} s; "
                           f"got {[m for _, m in self.messages][-10:]}")

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
