"""OSDP readers (IEC 60839-11-5) on an RS-485 line, through libosdp, Secure Channel
enforced: the agent is the OSDP control panel (CP), the reader a peripheral device (PD).

URLs::

    osdp:/dev/ttyUSB0?address=1&baud=9600
    osdp:///dev/serial/by-id/usb-FTDI_...-if00-port0?address=3

Options (config table or URL query; the query wins): ``address`` (the reader's OSDP
address, 0-126; 0), ``baud`` (9600, 19200, 38400, 57600, 115200 or 230400; 9600),
``scbk`` (the reader's 16-byte Secure Channel Base Key; the agent reads it from the key
file the config names, see ``edge-agent osdp-install``), ``retry_s`` (longest wait
before trying an offline or refused reader again; 10).

There is no plaintext mode: a reader that cannot set up a secure channel with this key
(wrong key, a reader still in install mode, a reader without SC) is *refused* — health
DOWN and a ``refused`` alert — and nothing it sends is used. Tamper (the reader's local
status) and the link going down and up are reported as alerts; the decision of each read
goes back to the reader's LED and buzzer (``feedback``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import osdp
import serial

from drivers.card_line_formats import parse_hex, parse_wiegand
from drivers.errors import BadPeripheralUrl, KeySetFailed
from drivers.protocols import (
    AlertHandler,
    CardRead,
    HealthState,
    PeripheralHealth,
    ReaderAlert,
    ReaderCondition,
    ReadHandler,
)
from drivers.reader_support import Backoff, ReaderHealth, deliver, option_float, split_query

log = logging.getLogger(__name__)

BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400)
_OUR_KEYS = ("address", "baud", "retry_s")
# a reader that answered and then dropped the link this soon was refused (SC failed);
# one that never answers is only given up by libosdp after its 8 s online timeout
_REFUSED_WITHIN_S = 3.0
_NO_ANSWER_AFTER_S = 2.0
_TICK_S = 0.05
# libosdp prints its own log lines straight to stderr, outside the agent's JSON log;
# keep it quiet: health details and alerts say what happened, in the technician's words
_LIB_LOG_LEVEL = osdp.LogLevel.Emergency
# LED times are in units of 100 ms (OSDP osdp_LED / osdp_BUZ)
_GRANT = (osdp.CommandLEDColor.Green, 15, (1, 0, 1))
_DENY = (osdp.CommandLEDColor.Red, 20, (3, 2, 2))


def parse_osdp_url(url: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """'osdp:/dev/ttyUSB0?address=1' -> ('/dev/ttyUSB0', merged options)."""
    base, query = split_query(url.partition(":")[2])
    if base.startswith("//"):
        base = base[2:]
    if not base.startswith("/"):
        raise BadPeripheralUrl(f"'{url}': give the serial device, e.g. "
                               "osdp:/dev/ttyUSB0?address=1&baud=9600")
    unknown = sorted(set(query) - set(_OUR_KEYS))
    if unknown:
        raise BadPeripheralUrl(f"'{url}': unknown option {', '.join(unknown)} "
                               f"(known: {', '.join(_OUR_KEYS)})")
    return base, {**options, **query}


def reader_key(options: Mapping[str, Any], reader_id: str) -> bytes:
    key = options.get("scbk")
    if key is None:
        raise BadPeripheralUrl(
            f"OSDP reader '{reader_id}' has no secure channel key: set scbk = "
            f"\"file:keys/osdp-{reader_id}.scbk\" and run edge-agent osdp-install "
            f"--reader {reader_id}")
    if not isinstance(key, bytes) or len(key) != 16:
        raise BadPeripheralUrl(f"OSDP reader '{reader_id}': scbk must be 16 bytes")
    return key


def card_value(event: Mapping[str, Any]) -> tuple[str | None, str]:
    """An OSDP card read -> (UID as hex, or None) and the drop reason."""
    data = bytes(event.get("data") or b"")
    bits = int(event.get("length", len(data) * 8))
    if event.get("format") == osdp.CardFormat.ASCII:
        result = parse_hex(data.decode("ascii", "replace").strip())
    elif bits in (26, 34):
        number = int.from_bytes(data, "big") >> (len(data) * 8 - bits)
        result = parse_wiegand(format(number, f"0{bits}b"), bits)
    elif bits % 8 == 0 and 4 <= bits // 8 <= 10 and len(data) == bits // 8:
        return data.hex().upper(), ""
    else:
        return None, "bad_format"
    return (result.value, "") if result.dropped is None else (None, result.dropped)


class SerialLink(osdp.Channel):  # type: ignore[misc]  # libosdp ships no type hints
    """The serial port under libosdp (called from libosdp's own thread). A port that
    vanishes (USB adapter unplugged) reads as silence and is reopened with back-off.

    These methods are called from libosdp's C code, which does not clear a Python error
    a callback leaves behind (the next Python call then misbehaves): they never raise."""

    def __init__(self, port_name: str, baud: int) -> None:
        super().__init__()
        self.port_name, self.baud = port_name, baud
        self._port: serial.Serial | None = None
        self._backoff = Backoff(0.2, 5.0)
        self._retry_at = 0.0
        self.error: str | None = "not opened yet"
        self.opened = 0  # how many times the port was (re)opened

    def _get(self) -> serial.Serial | None:
        if self._port is not None or time.monotonic() < self._retry_at:
            return self._port
        try:
            self._port = serial.Serial(self.port_name, self.baud, timeout=0, write_timeout=1)
        except Exception as exc:  # see the class doc
            self._lost(exc)
            return None
        self.error, self.opened = None, self.opened + 1
        self._backoff.reset()
        return self._port

    def _lost(self, exc: Exception) -> None:
        self.error = f"cannot use {self.port_name}: {exc}"
        self._retry_at = time.monotonic() + self._backoff.next_delay()
        if self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
            self._port = None

    def read(self, max_bytes: int) -> bytes:
        port = self._get()
        if port is None:
            return b""
        try:
            return bytes(port.read(max_bytes))
        except Exception as exc:  # see the class doc
            self._lost(exc)
            return b""

    def write(self, buf: bytes) -> int:
        port = self._get()
        if port is None:
            return 0
        try:
            return int(port.write(buf) or 0)
        except Exception as exc:  # see the class doc
            self._lost(exc)
            return 0

    def flush(self) -> None:
        if self._port is not None:
            try:
                self._port.flush()
            except Exception as exc:  # termios.error on a vanished pty; see the class doc
                self._lost(exc)

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
            self._port = None


class OsdpReader:
    """One OSDP reader on one serial line (one PD per line)."""

    first_open_wait_s = 2.0

    def __init__(self, reader_id: str, url: str, options: dict[str, Any]) -> None:
        self.id, self.url = reader_id, url
        self.port_name, opts = parse_osdp_url(url, options)
        self.address = int(option_float(opts, "address", 0, 0, 126))
        self.baud = int(option_float(opts, "baud", 9600, 9600, 230400))
        if self.baud not in BAUD_RATES:
            raise BadPeripheralUrl(f"baud {self.baud} is not an OSDP rate "
                                   f"({', '.join(map(str, BAUD_RATES))})")
        self.retry_s = option_float(opts, "retry_s", 10, 1, 300)
        self._scbk = reader_key(opts, reader_id)
        self._health = ReaderHealth(reader_id)
        self._alert_handler: AlertHandler | None = None
        self._reported: dict[ReaderCondition, bool] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cp: Any = None
        self._link: SerialLink | None = None
        self._up = False
        self._attempt_at = 0.0
        self._retry_at: float | None = None
        self._backoff = Backoff(1.0, self.retry_s)
        self._opened_seen = 0

    def __repr__(self) -> str:  # never the key
        return f"OsdpReader({self.id!r}, {self.url!r})"

    # -- the Protocols -------------------------------------------------------------

    def set_alert_handler(self, handler: AlertHandler) -> None:
        self._alert_handler = handler

    def start(self, on_read: ReadHandler) -> None:
        self._stop.clear()
        self._link = SerialLink(self.port_name, self.baud)
        info = osdp.PDInfo(self.address, self._link, scbk=self._scbk, name=f"reader-{self.id}",
                           flags=[osdp.LibFlag.EnforceSecure, osdp.LibFlag.EnableNotification])
        self._cp = osdp.ControlPanel([info], log_level=_LIB_LOG_LEVEL)
        self._cp.start()
        self._up, self._retry_at, self._reported, self._opened_seen = False, None, {}, 0
        self._attempt_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(on_read,),
                                        name=f"reader-{self.id}", daemon=True)
        self._health.begin(self.first_open_wait_s + 0.5, self._thread.start)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._cp is not None:
            with contextlib.suppress(RuntimeError):
                self._cp.teardown()
            self._cp = None
        if self._link is not None:
            self._link.close()
        self._up = False
        self._health.set(HealthState.DOWN, "stopped", expected=True)

    def health(self) -> PeripheralHealth:
        return self._health.snapshot()

    def feedback(self, granted: bool) -> None:
        cp = self._cp
        if cp is None or not self._up:
            return
        color, led_time, (on, off, repeat) = _GRANT if granted else _DENY
        led = {"command": osdp.Command.LED, "reader": 0, "led_number": 0, "temporary": True,
               "control_code": 2, "on_count": led_time, "off_count": 0, "on_color": color,
               "off_color": osdp.CommandLEDColor.Black, "timer_count": led_time}
        buzzer = {"command": osdp.Command.Buzzer, "reader": 0, "control_code": 2,
                  "on_count": on, "off_count": off, "rep_count": repeat}
        for command in (led, buzzer):
            if not cp.submit_command(self.address, command):
                self._health.drop("feedback_refused")

    # -- the reader's own thread -------------------------------------------------------

    def _run(self, on_read: ReadHandler) -> None:
        cp = self._cp
        while not self._stop.is_set():
            try:
                event = cp.get_event(self.address, timeout=_TICK_S)
                if event is not None:
                    self._on_event(event, on_read)
                self._check_link(time.monotonic())
            except Exception:  # never let the reader thread die
                log.exception("reader %s: OSDP handling failed", self.id)
                self._stop.wait(0.5)

    def _on_event(self, event: Mapping[str, Any], on_read: ReadHandler) -> None:
        kind = event.get("event")
        if kind == osdp.Event.CardRead:
            now = time.monotonic()
            if not self._up:  # never use input that did not come over the secure channel
                self._health.drop("not_secure")
                return
            value, dropped = card_value(event)
            if value is None:
                self._health.drop(dropped)
                return
            deliver(on_read, CardRead(self.id, "uid", value, now))
        elif kind == osdp.Event.Status and event.get("type") == osdp.StatusReportType.Local:
            report = bytes(event.get("report") or b"\x00")
            open_ = bool(report[0] & 1)
            self._alert(ReaderCondition.TAMPER, open_,
                        "tamper switch open: the reader's housing is off or opened"
                        if open_ else "tamper switch closed again")
        elif kind == osdp.Event.Notification \
                and event.get("type") == osdp.EventNotification.PeripheralDeviceStatus \
                and not event.get("arg0"):
            self._link_dropped(time.monotonic())

    def _check_link(self, now: float) -> None:
        cp, link = self._cp, self._link
        assert link is not None
        up = bool(cp.is_online(self.address) and cp.is_sc_active(self.address))
        if up and not self._up:
            self._went_up()
        elif not up and self._up:
            self._up = False
            self._offline(f"reader stopped answering on {self.port_name}")
            self._retry_at = now + self._backoff.next_delay()
        elif not up and self._retry_at is None and now - self._attempt_at > _NO_ANSWER_AFTER_S \
                and not self._reported.get(ReaderCondition.REFUSED):
            self._offline(link.error or self._no_answer())
        if link.opened != self._opened_seen:  # the port came back: start over at once
            self._opened_seen = link.opened
            if link.opened > 1:
                self._retry_at = now
        if self._retry_at is not None and now >= self._retry_at and not self._up:
            self._restart()

    def _no_answer(self) -> str:
        return (f"no answer from OSDP address {self.address} on {self.port_name} at "
                f"{self.baud} baud: check the A/B wiring, the reader's power, its address "
                "and baud rate")

    def _went_up(self) -> None:
        self._up, self._retry_at = True, None
        self._backoff.reset()
        self._health.set(HealthState.OK, f"online with secure channel, address {self.address} "
                                         f"on {self.port_name} at {self.baud} baud")
        self._alert(ReaderCondition.REFUSED, False, "secure channel established")
        self._alert(ReaderCondition.OFFLINE, False, "reader answering again")
        # learn the tamper state now; later changes arrive by themselves
        self._cp.submit_command(self.address, {"command": osdp.Command.Status,
                                               "type": osdp.StatusReportType.Local})

    def _link_dropped(self, now: float) -> None:
        """libosdp took the reader offline: refused soon after it answered, or silent."""
        if self._up:
            return  # _check_link sees it on this tick
        answered = any(vars(self._cp.get_pd_id(self.address)).values())
        if answered and now - self._attempt_at < _REFUSED_WITHIN_S:
            level, _items = self._cp.check_capability(
                self.address, osdp.Capability.CommunicationSecurity)
            why = ("the reader does not support secure channel" if not level else
                   "wrong key, or the reader is still in install mode: run edge-agent "
                   f"osdp-install --reader {self.id}")
            detail = f"reader refused: secure channel ({why}); its cards are ignored"
            self._health.set(HealthState.DOWN, detail)
            self._alert(ReaderCondition.REFUSED, True, detail)
        else:
            self._offline(self._link.error if self._link and self._link.error
                          else self._no_answer())
        self._retry_at = now + self._backoff.next_delay()

    def _offline(self, detail: str) -> None:
        self._health.set(HealthState.DOWN, f"offline: {detail}")
        self._alert(ReaderCondition.OFFLINE, True, detail)

    def _restart(self) -> None:
        """libosdp waits minutes before it retries an offline reader; start over now."""
        cp = self._cp
        self._retry_at = None
        if cp.is_pd_enabled(self.address):
            cp.disable_pd(self.address)
            deadline = time.monotonic() + 1.0
            while cp.is_pd_enabled(self.address) and time.monotonic() < deadline:
                time.sleep(0.01)
        while cp.get_event(self.address, timeout=0) is not None:
            pass  # the notifications of the disabling itself
        cp.enable_pd(self.address)
        self._attempt_at = time.monotonic()

    def _alert(self, condition: ReaderCondition, active: bool, detail: str) -> None:
        """Report a condition when it changes (an end only after a start)."""
        if self._reported.get(condition, False) == active:
            return
        self._reported[condition] = active
        if active:
            log.warning("reader %s %s: %s", self.id, condition.value, detail)
        handler = self._alert_handler
        if handler is not None:
            try:
                handler(ReaderAlert(self.id, condition, active, detail))
            except Exception:
                log.exception("reader %s: recording the %s alert failed", self.id,
                              condition.value)


# -- setting the reader's key (edge-agent osdp-install) ------------------------------

class _Watch:
    """The Secure Channel notifications of one control panel, in order."""

    def __init__(self, cp: Any, address: int) -> None:
        self.cp, self.address = cp, address
        self.sc: list[tuple[bool, bool]] = []  # (active, with SCBK-D)

    def pump(self, seconds: float) -> None:
        event = self.cp.get_event(self.address, timeout=seconds)
        if event is not None and event.get("event") == osdp.Event.Notification \
                and event.get("type") == osdp.EventNotification.SecureChannelStatus:
            self.sc.append((bool(event.get("arg0")), bool(event.get("arg1"))))

    def until(self, done: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump(0.05)
            if done():
                return True
        return False


def _panel(port_name: str, baud: int, address: int, key: bytes, enforce: bool
           ) -> tuple[Any, SerialLink]:
    link = SerialLink(port_name, baud)
    flags = [osdp.LibFlag.EnableNotification] + ([osdp.LibFlag.EnforceSecure] if enforce else [])
    cp = osdp.ControlPanel([osdp.PDInfo(address, link, scbk=key, flags=flags)],
                           log_level=_LIB_LOG_LEVEL)
    cp.start()
    return cp, link


def _close(cp: Any, link: SerialLink) -> None:
    with contextlib.suppress(RuntimeError):
        cp.teardown()
    link.close()


def _secure_with(port_name: str, baud: int, address: int, key: bytes, timeout_s: float) -> bool:
    cp, link = _panel(port_name, baud, address, key, enforce=True)
    try:
        return _Watch(cp, address).until(lambda: cp.is_sc_active(address), timeout_s)
    finally:
        _close(cp, link)


def set_reader_key(url: str, new_key: bytes, current_key: bytes | None,
                   timeout_s: float = 10.0) -> None:
    """Give the reader at ``url`` the secure channel key ``new_key``, then check that it
    answers with that key alone. ``current_key`` None: the reader is in install mode and
    knows only the default key SCBK-D, used for this one session; otherwise the key is
    rotated over a secure channel opened with ``current_key``. Raises KeySetFailed."""
    port_name, opts = parse_osdp_url(url, {})
    address = int(option_float(opts, "address", 0, 0, 126))
    baud = int(option_float(opts, "baud", 9600, 9600, 230400))
    where = f"OSDP address {address} on {port_name} at {baud} baud"
    if current_key is None:
        _install_mode(port_name, baud, address, new_key, where, timeout_s)
    else:
        _rotate(port_name, baud, address, current_key, new_key, where, timeout_s)
    if not _secure_with(port_name, baud, address, new_key, timeout_s):
        raise KeySetFailed(f"{where}: the reader took a new key but does not open a secure "
                           "channel with it; put it in install mode and run again",
                           maybe_taken=True)


def _install_mode(port_name: str, baud: int, address: int, new_key: bytes, where: str,
                  timeout_s: float) -> None:
    # not enforcing: libosdp falls back to SCBK-D when our key fails, and once a
    # session with SCBK-D is up it sends KEYSET with our key and restarts SC with it
    cp, link = _panel(port_name, baud, address, new_key, enforce=False)
    watch = _Watch(cp, address)
    try:
        keyed = watch.until(lambda: (True, True) in watch.sc and watch.sc[-1] == (True, False),
                            timeout_s)
        if keyed:
            return
        if (True, True) in watch.sc:
            raise KeySetFailed(f"{where}: the reader opened install mode but did not take "
                               "the new key; run again", maybe_taken=True)
        if cp.is_online(address):
            raise KeySetFailed(f"{where}: the reader answers but refuses the install-mode "
                               "key: it is not in install mode (see its manual: factory "
                               "reset or install jumper), or it does not do secure channel")
        raise KeySetFailed(f"{where}: no answer; check the wiring, power, address and baud")
    finally:
        _close(cp, link)


def _rotate(port_name: str, baud: int, address: int, current_key: bytes, new_key: bytes,
            where: str, timeout_s: float) -> None:
    cp, link = _panel(port_name, baud, address, current_key, enforce=True)
    watch = _Watch(cp, address)
    try:
        if not watch.until(lambda: cp.is_sc_active(address), timeout_s):
            raise KeySetFailed(f"{where}: no secure channel with the stored key (wrong key "
                               "or no answer); to start over put the reader in install "
                               "mode and run without --rotate")
        mark = len(watch.sc)
        if not cp.submit_command(address, {"command": osdp.Command.Keyset, "type": 1,
                                           "data": new_key}):
            raise KeySetFailed(f"{where}: the new key could not be sent")
        # libosdp drops the session after the reader's ACK and opens one with the new key
        if not watch.until(lambda: (True, False) in watch.sc[mark:], timeout_s):
            raise KeySetFailed(f"{where}: the reader did not confirm the new key",
                               maybe_taken=True)
    finally:
        _close(cp, link)
