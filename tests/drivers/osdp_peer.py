"""A real OSDP reader for tests: a libosdp PeripheralDevice in a process of its own, on
the far end of a socat pty pair, driven by JSON lines on its stdin.

Run as ``python -m tests.drivers.osdp_peer TTY --address 1 (--key HEX | --install)``.
It prints ``@{json}`` lines: ``{"sc": true}`` once the secure channel is up, every
command the controller sends (``{"command": {...}}``, bytes as hex) and, for each card
it presents, ``{"card_at": <time.monotonic()>}`` (CLOCK_MONOTONIC is one clock for all
processes, so the test can measure the latency to the agent's read). Commands on stdin:
``{"op": "card", "data": HEX, "bits": N}``, ``{"op": "tamper", "open": bool}``,
``{"op": "silent"}`` (stop answering, the port stays open), ``{"op": "resume"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.drivers.socat_pty import open_pty_pair

PEER_TIMEOUT_S = 10.0


# -- the peer process -----------------------------------------------------------------

def _say(**fields: Any) -> None:
    sys.stdout.write("@" + json.dumps(fields) + "\n")
    sys.stdout.flush()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def serve(tty: str, address: int, key: bytes | None) -> None:  # pragma: no cover - subprocess
    import osdp
    import serial

    class Link(osdp.Channel):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.port = serial.Serial(tty, 9600, timeout=0)

        def read(self, max_bytes: int) -> bytes:
            return bytes(self.port.read(max_bytes))

        def write(self, buf: bytes) -> int:
            return int(self.port.write(buf) or 0)

        def flush(self) -> None:
            self.port.flush()

    def on_command(command: dict[str, Any]) -> tuple[int, Any]:
        _say(command=_plain(command))
        # a status request (osdp_LSTAT) is answered by libosdp; its Python binding passes
        # no report bytes back, so the reply says "closed": tamper changes are events
        return 0, None

    flags = [osdp.LibFlag.EnforceSecure] if key else [osdp.LibFlag.InstallMode]
    caps = osdp.PDCapabilities([(osdp.Capability.LEDControl, 1, 1),
                                (osdp.Capability.AudibleControl, 1, 1),
                                (osdp.Capability.CommunicationSecurity, 1, 1)])
    pd = osdp.PeripheralDevice(osdp.PDInfo(address, Link(), scbk=key, flags=flags), caps,
                               log_level=osdp.LogLevel.Error, command_handler=on_command)
    pd.start()
    threading.Thread(target=_watch_sc, args=(pd,), daemon=True).start()
    _say(ready=True)
    for line in sys.stdin:
        op = json.loads(line)
        if op["op"] == "card":
            at = time.monotonic()
            pd.submit_event({"event": osdp.Event.CardRead, "reader_no": 0, "direction": 0,
                             "format": osdp.CardFormat.Unspecified, "length": op["bits"],
                             "data": bytes.fromhex(op["data"])})
            _say(card_at=at)
        elif op["op"] == "tamper":
            pd.submit_event({"event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
                             "report": bytes([int(op["open"]), 0])})
        elif op["op"] == "silent":
            pd.stop()
        elif op["op"] == "resume":
            pd.start()
    os._exit(0)


def _watch_sc(pd: Any) -> None:  # pragma: no cover - subprocess
    was = False
    while True:
        now = bool(pd.is_sc_active())
        if now != was:
            _say(sc=now)
            was = now
        time.sleep(0.02)


# -- the test's side ------------------------------------------------------------------

class OsdpPeer:
    """A socat pty pair with the reader process on its far end; the agent opens
    ``device``. ``key`` None: a reader in install mode (knows only SCBK-D)."""

    def __init__(self, folder: Path, key: bytes | None, address: int = 1) -> None:
        self.folder, self.key, self.address = folder, key, address
        self.device = folder / "osdp-agent-tty"
        self.far = folder / "osdp-reader-tty"
        self.socat: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.said: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def start(self) -> OsdpPeer:
        if self.socat is None:
            self.socat = open_pty_pair(self.device, self.far)
        args = [sys.executable, "-m", "tests.drivers.osdp_peer", str(self.far),
                "--address", str(self.address)]
        args += ["--key", self.key.hex()] if self.key else ["--install"]
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": f"{root}:{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, cwd=root)
        threading.Thread(target=self._listen, args=(self.proc,), daemon=True).start()
        self.wait(lambda s: s.get("ready"), "the reader process to start")
        return self

    def _listen(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("@"):
                with self._cond:
                    self.said.append(json.loads(line[1:]))
                    self._cond.notify_all()

    def send(self, **op: Any) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(op) + "\n")
        self.proc.stdin.flush()

    def wait(self, check: Any, what: str, timeout: float = PEER_TIMEOUT_S,
             after: int = 0) -> dict[str, Any]:
        """The first thing the reader said (from index ``after``) that passes ``check``."""
        def found() -> dict[str, Any] | None:
            return next((s for s in self.said[after:] if check(s)), None)
        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                     f"the reader said {self.said[-8:]}")
            result = found()
            assert result is not None
            return result

    def commands(self, kind: int) -> list[dict[str, Any]]:
        with self._cond:
            return [s["command"] for s in self.said
                    if "command" in s and s["command"].get("command") == kind]

    def present(self, uid_hex: str, bits: int | None = None) -> float:
        """Present a card; returns the reader's time.monotonic() of the card event."""
        mark = len(self.said)
        self.send(op="card", data=uid_hex, bits=bits or len(uid_hex) * 4)
        return float(self.wait(lambda s: "card_at" in s, "the card event", after=mark)
                     ["card_at"])

    def stop_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop_process()
        if self.socat is not None and self.socat.poll() is None:
            self.socat.kill()
            self.socat.wait(10)
        self.socat = None
        for link in (self.device, self.far):
            link.unlink(missing_ok=True)


def main() -> None:  # pragma: no cover - subprocess entry
    parser = argparse.ArgumentParser()
    parser.add_argument("tty")
    parser.add_argument("--address", type=int, default=1)
    parser.add_argument("--key")
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    serve(args.tty, args.address, None if args.install else bytes.fromhex(args.key))


if __name__ == "__main__":  # pragma: no cover
    main()
