"""Turnstile/door output through a USB (or TCP) serial relay board (pyserial).

URL: ``serial-relay:/dev/ttyUSB0?board=lcus&channel_in=1&channel_out=2`` — the port part
is anything pyserial's ``serial_for_url`` opens (``/dev/serial/by-id/...`` is the stable
name for USB boards; ``socket://10.0.0.9:4196`` for serial-over-TCP relay modules).

Boards (option ``board``):

- ``lcus`` (default): LCUS-1/2/4/8 CH340 boards, 9600 baud, 4-byte frames
  ``A0 <channel> <1 on|0 off> <sum of the three bytes>``, e.g. ``A0 01 01 A2`` /
  ``A0 01 00 A1``; channels count from 1.
- ``numato``: Numato Lab USB relay modules, 19200 baud, ``relay on 0\\r`` /
  ``relay off 0\\r``; channels count from 0.
- ``ascii``: any board driven by text lines: ``on_cmd``/``off_cmd`` templates with
  ``{ch}`` (defaults ``"ON{ch}\\r\\n"``/``"OFF{ch}\\r\\n"``), ``baud`` as the board needs.

Other options: ``channel_in`` (default 1, or 0 for numato), ``channel_out`` (default: the
same relay), ``baud``, ``?pulse_ms=N`` in the URL (fixes every release's length; the
``[[gates]]`` table's ``pulse_ms`` is what the daemon passes otherwise), ``check_ms`` (how
often an unplugged board is looked for, default 1000).

These boards have no inputs, so there is no passage feedback or fire-alarm input here;
hold_open works (fire alarm from another controller's input). A board that vanishes
(USB unplugged) makes health DOWN and every release raise PeripheralOffline, so the
failure is logged at the tap, until a watchdog thread finds the port again; it then
re-sends the held state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import serial

from drivers.errors import BadPeripheralUrl, PeripheralOffline
from drivers.protocols import (
    Direction,
    GatePulse,
    HealthState,
    PassageHandler,
    PeripheralHealth,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RelayBoard:
    """How one board family switches a channel."""

    name: str
    baud: int
    first_channel: int
    on_cmd: str = ""
    off_cmd: str = ""

    def command(self, channel: int, on: bool) -> bytes:
        if self.name == "lcus":
            frame = bytes([0xA0, channel, 1 if on else 0])
            return frame + bytes([sum(frame) & 0xFF])
        template = self.on_cmd if on else self.off_cmd
        return template.format(ch=channel).encode("ascii")


def _board(gate_id: str, opts: dict[str, Any]) -> RelayBoard:
    name = str(opts.get("board", "lcus")).lower()
    if name == "lcus":
        return RelayBoard("lcus", 9600, 1)
    if name == "numato":
        return RelayBoard("numato", 19200, 0, "relay on {ch}\r", "relay off {ch}\r")
    if name == "ascii":
        on = _unescape(str(opts.get("on_cmd", "ON{ch}\\r\\n")))
        off = _unescape(str(opts.get("off_cmd", "OFF{ch}\\r\\n")))
        return RelayBoard("ascii", 9600, 1, on, off)
    raise BadPeripheralUrl(f"gate {gate_id}: board must be lcus, numato or ascii, got '{name}'")


def _unescape(text: str) -> str:
    # TOML/URL values carry \r \n as two characters when written that way
    return text.replace("\\r", "\r").replace("\\n", "\n")


class SerialRelayGate:
    def __init__(self, gate_id: str, url: str, options: dict[str, Any]) -> None:
        self.id = gate_id
        self.url = url
        base, _, query = url.partition("?")
        opts: dict[str, Any] = {**dict(parse_qsl(query)), **options}
        self.port = base.partition(":")[2]
        if not self.port:
            raise BadPeripheralUrl(f"gate {gate_id}: '{url}' names no port; expected e.g. "
                                   "serial-relay:/dev/ttyUSB0?board=lcus&channel_in=1")
        self.board = _board(gate_id, opts)
        self.baud = int(opts.get("baud", self.board.baud))
        try:
            ch_in = int(opts.get("channel_in", self.board.first_channel))
            ch_out = int(opts.get("channel_out", ch_in))
        except ValueError as exc:
            raise BadPeripheralUrl(f"gate {gate_id}: channels must be numbers ({exc})") from exc
        for ch in (ch_in, ch_out):
            if not self.board.first_channel <= ch <= 255:
                raise BadPeripheralUrl(f"gate {gate_id}: channel {ch} does not exist on a "
                                       f"{self.board.name} board (first is "
                                       f"{self.board.first_channel})")
        self.channels: dict[Direction, int] = {"in": ch_in, "out": ch_out}
        self.pulse_ms = int(opts["pulse_ms"]) if "pulse_ms" in opts else None
        self.check_s = int(opts.get("check_ms", 1000)) / 1000
        self._serial: Any = None
        self._lock = threading.Lock()
        self._off_timers: dict[int, threading.Timer] = {}
        self._held = False
        self._started = False
        self._error: str | None = None
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.pulses = 0

    # -- lifecycle ------------------------------------------------------------------------

    def set_passage_handler(self, handler: PassageHandler) -> None:
        """No inputs on these boards: the handler is never called."""

    def start(self) -> None:
        self._stop.clear()
        with self._lock:
            self._started = True
            self._reopen()  # a board missing at boot is reported, and looked for later
        self._watchdog = threading.Thread(target=self._watch, name=f"relay-{self.id}",
                                          daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
            self._watchdog = None
        with self._lock:
            for timer in self._off_timers.values():
                timer.cancel()
            self._off_timers.clear()
            if self._serial is not None:
                for ch in set(self.channels.values()):
                    with contextlib.suppress(Exception):
                        self._serial.write(self.board.command(ch, False))
            self._close()
            self._started = False

    def health(self) -> PeripheralHealth:
        if not self._started:
            return PeripheralHealth(HealthState.DOWN, "not started")
        if self._serial is None:
            return PeripheralHealth(HealthState.DOWN, self._error or "relay board not open")
        detail = f"{self.board.name} relay board on {self.port}, {self.pulses} pulses"
        return PeripheralHealth.ok(detail + (", held open" if self._held else ""))

    # -- port handling (callers hold the lock) ---------------------------------------------

    def _reopen(self) -> bool:
        self._close()
        try:
            port = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0.2,
                                         write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._error = (f"relay board of gate {self.id} at {self.port} cannot be opened "
                           f"({exc}): check its USB cable; `ls /dev/serial/by-id/` should "
                           "list it")
            return False
        self._serial = port
        self._error = None
        # known state after (re)connect: held relays on, the others off
        try:
            for ch in set(self.channels.values()):
                self._write(self.board.command(ch, self._held))
        except PeripheralOffline:
            return False
        return True

    def _close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None

    def _write(self, data: bytes) -> None:
        if self._serial is None:
            raise PeripheralOffline(self._error or f"relay board of gate {self.id} is not open")
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError) as exc:
            self._close()
            self._error = (f"relay board of gate {self.id} at {self.port} stopped answering "
                           f"({exc}): check its USB cable")
            log.warning("%s", self._error)
            raise PeripheralOffline(self._error) from exc

    def _gone(self) -> bool:
        # USB unplug removes the device node (a by-id symlink dangles); pyserial only
        # notices on the next write, which may be a member's release
        return self.port.startswith("/") and not os.path.exists(self.port)

    def _watch(self) -> None:
        while not self._stop.wait(self.check_s):
            with self._lock:
                if not self._started:
                    return
                if self._serial is not None and self._gone():
                    self._close()
                    self._error = (f"relay board of gate {self.id} at {self.port} was "
                                   "unplugged: check its USB cable")
                    log.warning("%s", self._error)
                elif self._serial is None and not self._gone() and self._reopen():
                    log.info("relay board of gate %s back on %s", self.id, self.port)

    # -- outputs --------------------------------------------------------------------------

    def open(self, direction: Direction, pulse_ms: int) -> None:
        ms = self.pulse_ms or pulse_ms
        channel = self.channels[direction]
        with self._lock:
            if not self._started:
                raise PeripheralOffline(f"gate {self.id} is not started")
            if self._serial is None and (self._gone() or not self._reopen()):
                raise PeripheralOffline(self._error or f"relay board of gate {self.id} is "
                                        "not connected")
            self._write(self.board.command(channel, True))
            self.pulses += 1
            if channel in self._off_timers:  # a second release extends the first
                self._off_timers[channel].cancel()
            timer = threading.Timer(ms / 1000, self._end_pulse, args=(channel,))
            timer.daemon = True
            self._off_timers[channel] = timer
            timer.start()
        log.debug("gate %s released %s", self.id, GatePulse(self.id, direction, ms))

    def _end_pulse(self, channel: int) -> None:
        with self._lock:
            if self._off_timers.get(channel) is not threading.current_thread():
                return
            del self._off_timers[channel]
            if self._held or self._serial is None:
                return
            # logged by _write; an unplugged board drops its relays when it loses power
            with contextlib.suppress(PeripheralOffline):
                self._write(self.board.command(channel, False))

    def hold_open(self, active: bool) -> None:
        with self._lock:
            self._held = active
            if self._serial is None:
                return  # applied by _reopen when the board is back
            for ch in set(self.channels.values()):
                if active or ch not in self._off_timers:
                    self._write(self.board.command(ch, active))
